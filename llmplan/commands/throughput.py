"""`llmplan throughput` as a function: step time, MFU and where the time goes, for one parallel layout."""

from __future__ import annotations

from typing import Any, Optional

from llmplan.commands import args, training
from llmplan.commands.notes import note, warn
from llmplan.commands.result import Rows, command
from llmplan.errors import InputError


@command
def throughput(
    *, seq: Any = None, global_batch: Any = None, batch_tokens: Any = None, micro_batch: Any = 1, dtype: str = "bf16",
    gpu: str = "h100", gpus: Any = None, tp: Any = 1, sequence_parallel: Any = False, pp: Any = 1, vp: Any = 1, cp: Any = 1,
    ep: Any = 1, zero: Any = 0, recompute: str = "none", attention: str = "flash", dropout: Any = False, overlap_dp: Any = True,
    stack: Optional[str] = None, compile_: Any = None, gpus_per_node: Any = None, intra_bw: Any = None, inter_bw: Any = None,
    matmul_efficiency: Any = None, plot: Any = None, presets: Any = None, **model_options: Any,
) -> Rows:
    """The time of one training step on one parallel layout (`llmplan throughput`), part by part: compute,
    tensor-, pipeline-, data-, context- and expert-parallel communication, the bubble, the optimizer; its
    tokens/s, MFU and HFU, and its memory per GPU (one row). Give the model (preset=, hf=, hf_config=,
    safetensors= or the shape as layers=, d_model=, ...), the batch (global_batch= sequences or
    batch_tokens= such as "4M"), the GPUs and the layout (tp=, pp=, zero=, ...); compile= is --compile.

    Example: llmplan.throughput(preset="llama-2-7b", gpu="h100", gpus=64, global_batch=512, zero=1)[0]["mfu"]
    """
    from llmplan.systems.layout import RECOMPUTE, Layout
    from llmplan.systems.layout_search import check_layout, memory_breakdown
    from llmplan.systems.stack import describe
    from llmplan.systems.step_time import step_time

    compile_ = args.renamed(model_options, "compile", "compile_", compile_, None)
    source, shape_flags = args.model_flags(model_options, "throughput")
    given = training.run_options(dict(seq=seq, global_batch=global_batch, batch_tokens=batch_tokens, dtype=dtype, gpu=gpu,
                                      gpus_per_node=gpus_per_node, intra_bw=intra_bw, inter_bw=inter_bw,
                                      matmul_efficiency=matmul_efficiency, attention=attention, dropout=dropout,
                                      overlap_dp=overlap_dp, stack=stack, compile_=compile_))
    micro_batch, gpus, tp, pp, vp, cp, ep, zero = (args.integer(value, name) for value, name in (
        (micro_batch, "--micro-batch"), (gpus, "--gpus"), (tp, "--tp"), (pp, "--pp"), (vp, "--vp"), (cp, "--cp"), (ep, "--ep"),
        (zero, "--zero")))
    sequence_parallel = args.switch(sequence_parallel, "--sequence-parallel")
    if plot is not None:
        from llmplan.io.plots import check_plot_path

        check_plot_path(plot)
    model, shape, run, cluster = training.resolve_inputs(**source, flags=shape_flags, presets=presets, command="llmplan throughput", **given)
    dtype = args.parse_dtype(dtype, args.TRAIN_DTYPES)  # bfloat16 -> bf16, as resolve_inputs read it
    for value, name in ((tp, "--tp"), (pp, "--pp"), (vp, "--vp"), (cp, "--cp"), (ep, "--ep"), (micro_batch, "--micro-batch")):
        if value < 1:
            raise InputError(f"{name} must be a positive whole number, not {value}")
    mp = tp * pp * cp
    if gpus is None:
        gpus = mp
    if gpus < 1:
        raise InputError(f"--gpus must be positive, not {gpus}")
    layout = Layout(tp=tp, pp=pp, vp=vp, dp=max(1, gpus // mp), cp=cp, ep=ep, zero=zero, micro_batch=micro_batch,
                    recompute=args.choice(recompute, RECOMPUTE, "--recompute"), sequence_parallel=sequence_parallel and tp > 1)
    check_layout(shape, run, layout, gpus)
    why = run.software.allows(layout)
    if why:
        raise InputError(why)
    cluster.require_links(gpus)
    step = step_time(shape, run, layout, cluster)
    memory = memory_breakdown(shape, run, layout, dtype)
    row = training.build_row(model, cluster, run, layout, step, memory)
    if plot is not None:
        _plot(plot, [row], step.PARTS, f"Training step by part: {model} on {gpus} x {cluster.gpu} ({cluster.dtype}, {run.software.id}), "
              f"{run.global_batch} x {run.seq} tokens per step")
    if not row["fits"]:
        warn(_does_not_fit(shape, run, layout, dtype, memory, cluster))
    closing = training.close([describe(run.software, cluster.arch)] + [m for m in [run.software.note(cluster.gpu), run.software.caveat(layout)] if m])
    return Rows([row], detail=training.Step(model, run, cluster, gpus, closing, step=step, micro_batch=micro_batch))


def _does_not_fit(shape, run, layout, dtype, memory, cluster) -> str:
    """The warning for a layout over the GPU's memory, with the single changes that bring it under (each estimated)."""
    from dataclasses import replace

    from llmplan.systems.layout_search import memory_breakdown
    from llmplan.units import format_bytes

    gb = lambda b: format_bytes(b, binary=False)
    tries = []
    if layout.micro_batch > 1:
        tries.append(("--micro-batch 1", replace(layout, micro_batch=1)))
    if layout.recompute != "full":
        tries.append(("--recompute full", replace(layout, recompute="full")))
    for z in (1, 3):
        if layout.zero < z and layout.dp * layout.cp > 1:
            tries.append((f"--zero {z}", replace(layout, zero=z)))
    fits = []
    for flag, changed in tries:
        if run.software.allows(changed):
            continue  # the stack cannot run it
        total = memory_breakdown(shape, run, changed, dtype).total_bytes
        if total <= cluster.capacity_bytes:
            fits.append(f"{flag} ({gb(total)})")
    what = f"; these fit: {', '.join(fits)}" if fits else "; `llmplan layout` searches the layouts that fit"
    return f"this layout does not fit on {cluster.gpu}: {gb(memory.total_bytes)} per GPU of {gb(cluster.capacity_bytes)}{what}"


def _plot(path, rows, parts, title) -> None:
    """--plot: each layout's step time, part by part (the same picture as layout --plot)."""
    from llmplan.io.plots import layout_name, plot_step_parts

    note(f"wrote {plot_step_parts(path, rows, parts, [layout_name(r) for r in rows], title=title)}")
