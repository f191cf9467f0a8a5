"""`llmplan throughput`: step time, MFU and where the time goes, for one parallel layout.

The options and row it shares with `llmplan layout` live in cli/options.py (model, run, cluster)
and cli/common.py (the row and its table).
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from llmplan.cli import options
from llmplan.cli.common import TABLE_LABELS, TABLE_PRIORITY, build_row, emit, note, output_format, table_columns
from llmplan.errors import InputError
from llmplan.systems.layout import RECOMPUTE

app = typer.Typer()

PlotOption = options.plot_option('the step time broken down by part', ': one stacked bar per layout shown.')


@app.command(help="""Step time, tokens/s and MFU of one parallel layout, and where the time goes.

Counts, per micro-batch and per pipeline stage: matmuls at the GPU's achievable matmul rate plus their operand traffic (small GEMMs run slower), attention at the flash kernel's rate, element-wise work at HBM bandwidth, tensor-parallel collectives per layer, pipeline p2p and the bubble (pp-1)/(vp*m), data-parallel gradient reduction (exposed part), ZeRO-3 gathers, context-parallel ring exchange, expert-parallel all-to-all and the optimizer step. mfu counts 6N + 12*L*H*Q*T per token (PaLM App. B); hfu adds recomputation. total_bytes and fits come from llmplan memory.

Examples:

  llmplan throughput --preset llama-3.1-405b --gpu h100 --gpus 16384 --seq 8192 --global-batch 2048 --tp 8 --pp 2 --vp 21 --sequence-parallel --zero 1 --recompute full

  llmplan throughput --preset llama-2-7b --gpu a100 --gpus 64 --global-batch 512 --zero 3 --micro-batch 2

  llmplan throughput --layers 96 --d-model 12288 --heads 96 --vocab 51200 --mlp gelu --seq 2048 --global-batch 64 --gpu a100 --gpus 64 --tp 8 --pp 8 --attention eager --dropout --recompute selective --sequence-parallel -f json
""")
@options.grouped(source=options.MODEL_SOURCE, shape_flags=options.SHAPE)
def throughput(
    source: options.Flags = None,
    shape_flags: options.Flags = None,
    seq: options.SeqOption = None,
    global_batch: options.GlobalBatchOption = None,
    batch_tokens: options.BatchTokensOption = None,
    micro_batch: options.MicroBatchOption = 1,
    dtype: options.ComputeDtypeOption = "bf16",
    gpu: options.ClusterGpuOption = "h100",
    gpus: options.ClusterGpusOption = None,
    tp: options.TpOption = 1,
    sequence_parallel: options.SequenceParallelOption = False,
    pp: options.PpOption = 1,
    vp: options.VpOption = 1,
    cp: options.CpOption = 1,
    ep: options.EpOption = 1,
    zero: options.ZeroOption = 0,
    recompute: options.RecomputeOption = "none",
    attention: options.AttentionOption = "flash",
    dropout: options.DropoutOption = False,
    overlap_dp: options.OverlapOption = True,
    stack: options.StackOption = None,
    compile_: options.CompileOption = None,
    gpus_per_node: options.GpusPerNodeOption = None,
    intra_bw: options.IntraBwOption = None,
    inter_bw: options.InterBwOption = None,
    matmul_efficiency: options.MatmulEffOption = None,
    plot: PlotOption = None,
    fmt: options.FormatOption = None,
    presets: options.PresetsOption = None,
) -> None:
    from llmplan.systems.layout_search import check_layout, memory_breakdown
    from llmplan.systems.layout import Layout
    from llmplan.systems.step_time import step_time

    fmt = output_format(fmt)
    if plot is not None:
        from llmplan.io.plots import check_plot_path

        check_plot_path(plot)
    model, shape, run, cluster = options.resolve_inputs(
        **source, flags=shape_flags, presets=presets,
        seq=seq, global_batch=global_batch, batch_tokens=batch_tokens, dtype=dtype, gpu=gpu, gpus_per_node=gpus_per_node,
        intra_bw=intra_bw, inter_bw=inter_bw, matmul_efficiency=matmul_efficiency, attention=attention, dropout=dropout,
        overlap_dp=overlap_dp, command="llmplan throughput", stack=stack, compile_=compile_)
    dtype = options.parse_dtype(dtype, options.TRAIN_DTYPES)  # bfloat16 -> bf16, as resolve_inputs read it
    for value, name in ((tp, "--tp"), (pp, "--pp"), (vp, "--vp"), (cp, "--cp"), (ep, "--ep"), (micro_batch, "--micro-batch")):
        if value < 1:
            raise InputError(f"{name} must be a positive whole number, not {value}")
    mp = tp * pp * cp
    if gpus is None:
        gpus = mp
    if gpus < 1:
        raise InputError(f"--gpus must be positive, not {gpus}")
    layout = Layout(tp=tp, pp=pp, vp=vp, dp=max(1, gpus // mp), cp=cp, ep=ep, zero=zero, micro_batch=micro_batch,
                    recompute=options.choice(recompute, RECOMPUTE, "--recompute"), sequence_parallel=sequence_parallel and tp > 1)
    check_layout(shape, run, layout, gpus)
    why = run.software.allows(layout)
    if why:
        raise InputError(why)
    cluster.require_links(gpus)
    step = step_time(shape, run, layout, cluster)
    memory = memory_breakdown(shape, run, layout, dtype)
    row = build_row(model, cluster, run, layout, step, memory)
    if plot is not None:
        _plot(plot, [row], step.PARTS, f"Training step by part: {model} on {gpus} x {cluster.gpu} ({cluster.dtype}, {run.software.id}), "
              f"{run.global_batch} x {run.seq} tokens per step")
    from llmplan.systems.stack import describe

    if fmt != "table":
        emit([row], fmt)
        note(describe(run.software, cluster.arch))
        uncalibrated = run.software.note(cluster.gpu)
        if uncalibrated:
            note(uncalibrated)
        return
    from llmplan.units import format_bytes

    title = (f"Training step: {model} on {gpus} x {cluster.gpu} ({cluster.dtype}, {run.software.id}), {run.global_batch} x {run.seq} tokens, "
             f"{row['micro_batches']} micro-batches of {micro_batch} per replica")
    emit([row], "table", title=title, columns=table_columns([row]), labels=TABLE_LABELS, priority=TABLE_PRIORITY)
    parts = sorted(step.PARTS, key=lambda p: -row[f"{p}_seconds"])
    note(f"{row['tokens_per_second']:,.0f} tokens/s; MFU {row['mfu']:.1%}, HFU {row['hfu']:.1%}; "
         f"largest costs: " + ", ".join(f"{p.replace('_', ' ')} {row[f'{p}_fraction']:.0%}" for p in parts[:3]))
    note(describe(run.software, cluster.arch))
    uncalibrated = run.software.note(cluster.gpu)
    if uncalibrated:
        note(uncalibrated)
    if not row["fits"]:
        note(f"does not fit: {format_bytes(row['total_bytes'], binary=False)} per GPU > {format_bytes(cluster.memory_bytes, binary=False)}; "
             f"'llmplan layout' searches the layouts that fit")


def _plot(path, rows, parts, title) -> None:
    """--plot: each layout's step time, part by part (the same picture as layout --plot)."""
    from llmplan.io.plots import layout_name, plot_step_parts

    note(f"wrote {plot_step_parts(path, rows, parts, [layout_name(r) for r in rows], title=title)}")
