"""`llmplan layout`: search every parallel layout for the fastest one that fits in memory."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from llmplan.cli import options
from llmplan.cli.common import TABLE_LABELS, TABLE_PRIORITY, build_row, emit, note, output_format, table_columns
from llmplan.errors import InputError
from llmplan.systems.layout import RECOMPUTE, describe

app = typer.Typer()

PlotOption = options.plot_option('the step time broken down by part', ': one stacked bar per layout shown.')


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
    from llmplan.systems.layout_search import search
    from llmplan.units import format_bytes

    cap = format_bytes(cluster.memory_bytes, binary=False)
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


@app.command(help="""Search every valid parallel layout for the given GPUs; print the fastest that fit in memory.

Layouts: tp dividing the heads (within a node unless --tp-across-nodes), sequence parallelism on or off, pp dividing the layers, vp dividing the layers per stage, cp dividing --seq, dp = gpus / (tp*pp*cp) dividing the global batch, every micro-batch that divides the per-replica batch, ep dividing the experts (MoE), ZeRO 0-3 and recompute none/selective/full. Each is timed by the step model of 'llmplan throughput'; those that fit (llmplan memory) are ranked by step time (ties: less memory). Pin any dimension with its option (--tp 8, --zero 1, ...).

Examples:

  llmplan layout --preset llama-3.1-405b --gpu h100 --gpus 16384 --seq 8192 --global-batch 2048

  llmplan layout --preset llama-2-70b --gpu a100 --gpus 512 --global-batch 1024 --top 3 --explain

  llmplan layout --preset llama-2-7b --gpu h100 --gpus 64 --batch-tokens 4M --zero 3 -f json
""")
@options.grouped(source=options.MODEL_SOURCE, shape_flags=options.SHAPE)
def layout(
    source: options.Flags = None,
    shape_flags: options.Flags = None,
    seq: options.SeqOption = None,
    global_batch: options.GlobalBatchOption = None,
    batch_tokens: options.BatchTokensOption = None,
    gpu: options.ClusterGpuOption = "h100",
    gpus: Annotated[Optional[int], typer.Option("--gpus", "-k", help="GPUs in all (required).", show_default=False)] = None,
    top: Annotated[int, typer.Option("--top", help="How many layouts to print, fastest first.")] = 5,
    explain_: Annotated[bool, typer.Option("--explain", help="Say why the runner-up lost to the best (on stderr).")] = False,
    tp: options.TpOption = None,
    pp: options.PpOption = None,
    vp: options.VpOption = None,
    cp: options.CpOption = None,
    ep: options.EpOption = None,
    zero: options.ZeroOption = None,
    micro_batch: options.MicroBatchOption = None,
    recompute: options.RecomputeOption = None,
    dtype: options.ComputeDtypeOption = "bf16",
    attention: options.AttentionOption = "flash",
    dropout: options.DropoutOption = False,
    overlap_dp: options.OverlapOption = True,
    stack: options.StackOption = None,
    compile_: options.CompileOption = None,
    tp_across_nodes: options.TpAcrossOption = False,
    gpus_per_node: options.GpusPerNodeOption = None,
    intra_bw: options.IntraBwOption = None,
    inter_bw: options.InterBwOption = None,
    matmul_efficiency: options.MatmulEffOption = None,
    plot: PlotOption = None,
    fmt: options.FormatOption = None,
    presets: options.PresetsOption = None,
) -> None:
    from llmplan.systems.layout_search import search

    fmt = output_format(fmt)
    if plot is not None:
        from llmplan.io.plots import check_plot_path

        check_plot_path(plot)
    if gpus is None:
        raise InputError("give the number of GPUs to lay out: --gpus N (e.g. --gpus 64)")
    if gpus < 1:
        raise InputError(f"--gpus must be positive, not {gpus}")
    if top < 1:
        raise InputError(f"--top must be at least 1, not {top}")
    model, shape, run, cluster = options.resolve_inputs(
        **source, flags=shape_flags, presets=presets,
        seq=seq, global_batch=global_batch, batch_tokens=batch_tokens, dtype=dtype, gpu=gpu, gpus_per_node=gpus_per_node,
        intra_bw=intra_bw, inter_bw=inter_bw, matmul_efficiency=matmul_efficiency, attention=attention, dropout=dropout,
        overlap_dp=overlap_dp, command="llmplan layout", stack=stack, compile_=compile_)
    dtype = options.parse_dtype(dtype, options.TRAIN_DTYPES)  # bfloat16 -> bf16, as resolve_inputs read it
    cluster.require_links(gpus)
    fixed = {k: v for k, v in (("tp", tp), ("pp", pp), ("vp", vp), ("cp", cp), ("ep", ep), ("zero", zero), ("micro_batch", micro_batch)) if v is not None}
    if recompute is not None:
        fixed["recompute"] = options.choice(recompute, RECOMPUTE, "--recompute")
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
        rows.append({"rank": rank, **build_row(model, cluster, run, c.layout, c.step, c.memory)})
    if plot is not None:
        from llmplan.io.plots import layout_name, plot_step_parts

        title = (f"Step time by part, fastest layouts that fit first: {model} on {gpus} x {cluster.gpu} ({cluster.dtype}), "
                 f"{run.global_batch} x {run.seq} tokens per step")
        note(f"wrote {plot_step_parts(plot, rows, result.best[0].step.PARTS, [layout_name(r) for r in rows], title=title)}")
    if fmt == "table":
        title = (f"Fastest layouts that fit: {model} on {gpus} x {cluster.gpu} ({cluster.dtype}, {run.software.id}), {run.global_batch} x {run.seq} tokens per step "
                 f"({result.evaluated:,} valid layouts timed)")
        emit(rows, "table", title=title, columns=["rank"] + table_columns(rows), labels=TABLE_LABELS, priority=TABLE_PRIORITY)
        best = rows[0]
        note(f"best: {best['tokens_per_second']:,.0f} tokens/s, MFU {best['mfu']:.1%}, HFU {best['hfu']:.1%}"
             + ("" if best["sequence_parallel"] or best["tp"] == 1 else "; without sequence parallelism"))
    else:
        emit(rows, fmt)
    uncalibrated = run.software.note(cluster.gpu)
    if uncalibrated:
        note(uncalibrated)
    f = result.fastest
    if f is not None and f.memory.total_bytes > cluster.memory_bytes and f.step.step_seconds < result.best[0].step.step_seconds:
        note(f"the fastest layout overall ({describe(f.layout)}, {f.step.step_seconds:.3g} s) needs {f.memory.total_bytes / 1e9:.1f} GB per GPU")
    if explain_ and len(result.best) > 1:
        note(explain(result.best[0], result.best[1]))
