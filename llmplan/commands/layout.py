"""`llmplan layout` as a function: search every parallel layout for the fastest ones that fit in memory."""

from __future__ import annotations

from typing import Any, Optional

from llmplan.commands import args, training
from llmplan.commands.notes import note
from llmplan.commands.result import Rows, command
from llmplan.errors import InputError


def explain(best, runner) -> str:
    """Why the runner-up lost: the parts of the step that differ most, in seconds."""
    a, b = best.step, runner.step
    diffs = sorted(((getattr(b, f"{p}_seconds") - getattr(a, f"{p}_seconds"), p) for p in a.PARTS), key=lambda d: -abs(d[0]))
    shown = [f"{p.replace('_', ' ')} {d:+.3g} s" for d, p in diffs[:3] if abs(d) > 1e-9]
    gap = b.step_seconds - a.step_seconds
    changed = [f"{k} {getattr(best.layout, k)}->{getattr(runner.layout, k)}" for k in best.layout.keys()
               if getattr(best.layout, k) != getattr(runner.layout, k)]
    why = f"the runner-up ({', '.join(changed) or 'same layout'}) is {gap:.3g} s ({gap / a.step_seconds:.1%}) slower per step"
    if gap <= 1e-9:
        mem = runner.memory.total_bytes - best.memory.total_bytes
        return why.replace(" slower per step", " slower") + f"; a tie on time, it needs {mem / 1e9:+.2f} GB more per GPU"
    return why + (": " + ", ".join(shown) if shown else "")


def _nothing_fits(result, shape, run, cluster, gpus, dtype, fixed, tp_across) -> str:
    from llmplan.systems.layout import describe
    from llmplan.systems.layout_search import search
    from llmplan.units import format_bytes

    cap = format_bytes(cluster.capacity_bytes, binary=False)
    if result.evaluated == 0:
        return (f"no valid layout for {gpus} GPUs: dp = gpus / (tp x pp x cp) must divide the global batch of {run.global_batch} "
                f"with tp dividing {shape.heads} heads and pp dividing {shape.layers} layers; try a global batch that is a multiple of {gpus}")
    least = result.least_memory
    msg = (f"no layout of {gpus} x {cluster.gpu} fits {cap} per GPU: the least memory is "
           f"{format_bytes(least.memory.total_bytes, binary=False)} ({describe(least.layout)}; largest part {least.memory.dominant()})")
    for k in (2, 4, 8, 16, 32):
        more = search(shape, run, cluster, gpus * k, top=1, tp_across_nodes=tp_across, dtype=dtype, fixed=fixed)
        if more.best:
            c = more.best[0]
            return msg + f"; {gpus * k} GPUs would fit ({describe(c.layout)}: {format_bytes(c.memory.total_bytes, binary=False)}, {c.step.step_seconds:.3g} s per step)"
    return msg + "; try a smaller --seq or --global-batch"


@command
def layout(
    *, seq: Any = None, global_batch: Any = None, batch_tokens: Any = None, gpu: str = "h100", gpus: Any = None, top: Any = 5,
    explain_: Any = False, tp: Any = None, pp: Any = None, vp: Any = None, cp: Any = None, ep: Any = None, zero: Any = None,
    micro_batch: Any = None, recompute: Optional[str] = None, dtype: str = "bf16", attention: str = "flash", dropout: Any = False,
    overlap_dp: Any = True, stack: Optional[str] = None, compile_: Any = None, tp_across_nodes: Any = False,
    gpus_per_node: Any = None, intra_bw: Any = None, inter_bw: Any = None, matmul_efficiency: Any = None, plot: Any = None,
    presets: Any = None, **model_options: Any,
) -> Rows:
    """The fastest parallel layouts of a training run that fit in memory (`llmplan layout`), `top` rows,
    fastest first (rank 1 the best): every tp, pp, vp, dp, cp, ep, ZeRO stage, micro-batch and recompute
    that divide the model and the batch, each timed by the step model of `throughput`. Pin any dimension
    with its keyword (tp=8, zero=1, ...); explain=True says why the runner-up lost (a note); compile= is --compile.

    Example: llmplan.layout(preset="llama-2-70b", gpu="h100", gpus=512, global_batch=1024, top=3)[0]["tp"]
    """
    from llmplan.systems.layout import RECOMPUTE, describe
    from llmplan.systems.layout_search import search

    compile_ = args.renamed(model_options, "compile", "compile_", compile_, None)
    explain_ = args.switch(args.renamed(model_options, "explain", "explain_", explain_, False), "--explain")
    source, shape_flags = args.model_flags(model_options, "layout")
    given = training.run_options(dict(seq=seq, global_batch=global_batch, batch_tokens=batch_tokens, dtype=dtype, gpu=gpu,
                                      gpus_per_node=gpus_per_node, intra_bw=intra_bw, inter_bw=inter_bw,
                                      matmul_efficiency=matmul_efficiency, attention=attention, dropout=dropout,
                                      overlap_dp=overlap_dp, stack=stack, compile_=compile_))
    gpus, top, tp, pp, vp, cp, ep, zero, micro_batch = (args.integer(value, name) for value, name in (
        (gpus, "--gpus"), (top, "--top"), (tp, "--tp"), (pp, "--pp"), (vp, "--vp"), (cp, "--cp"), (ep, "--ep"), (zero, "--zero"),
        (micro_batch, "--micro-batch")))
    tp_across_nodes = args.switch(tp_across_nodes, "--tp-across-nodes")
    if plot is not None:
        from llmplan.io.plots import check_plot_path

        check_plot_path(plot)
    if gpus is None:
        raise InputError("give the number of GPUs to lay out: --gpus N (e.g. --gpus 64)")
    if gpus < 1:
        raise InputError(f"--gpus must be positive, not {gpus}")
    if top < 1:
        raise InputError(f"--top must be at least 1, not {top}")
    model, shape, run, cluster = training.resolve_inputs(**source, flags=shape_flags, presets=presets, command="llmplan layout", **given)
    dtype = args.parse_dtype(dtype, args.TRAIN_DTYPES)  # bfloat16 -> bf16, as resolve_inputs read it
    cluster.require_links(gpus)
    fixed = {k: v for k, v in (("tp", tp), ("pp", pp), ("vp", vp), ("cp", cp), ("ep", ep), ("zero", zero), ("micro_batch", micro_batch)) if v is not None}
    if recompute is not None:
        fixed["recompute"] = args.choice(recompute, RECOMPUTE, "--recompute")
    if zero is not None and zero not in (0, 1, 2, 3):
        raise InputError(f"--zero {zero} does not exist; use 0, 1, 2 or 3")
    if fixed:  # a pinned value that can never be valid is bad input, named like `throughput` names it
        from llmplan.systems.layout_search import check_pins

        check_pins(shape, run, gpus, fixed)
    result = search(shape, run, cluster, gpus, top=max(top, 2 if explain_ else 1), tp_across_nodes=tp_across_nodes, dtype=dtype, fixed=fixed)
    if not result.best:
        raise InputError(_nothing_fits(result, shape, run, cluster, gpus, dtype, fixed, tp_across_nodes))
    rows = []
    for rank, c in enumerate(result.best[:top], 1):
        rows.append({"rank": rank, **training.build_row(model, cluster, run, c.layout, c.step, c.memory)})
    if plot is not None:
        from llmplan.io.plots import layout_name, plot_step_parts

        title = (f"Step time by part, fastest layouts that fit first: {model} on {gpus} x {cluster.gpu} ({cluster.dtype}), "
                 f"{run.global_batch} x {run.seq} tokens per step")
        note(f"wrote {plot_step_parts(plot, rows, result.best[0].step.PARTS, [layout_name(r) for r in rows], title=title)}")
    closing = [m for m in [run.software.note(cluster.gpu), run.software.caveat(result.best[0].layout)] if m]
    f = result.fastest
    if f is not None and f.memory.total_bytes > result.capacity and f.step.step_seconds < result.best[0].step.step_seconds:
        closing.append(f"the fastest layout overall ({describe(f.layout)}, {f.step.step_seconds:.3g} s) needs {f.memory.total_bytes / 1e9:.1f} GB per GPU")
    if explain_ and len(result.best) > 1:
        closing.append(explain(result.best[0], result.best[1]))
    return Rows(rows, detail=training.Step(model, run, cluster, gpus, training.close(closing), evaluated=result.evaluated))
