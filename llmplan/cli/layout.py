"""`llmplan layout`: search every parallel layout for the fastest one that fits in memory."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from llmplan.cli import options
from llmplan.cli.common import TABLE_LABELS, TABLE_PRIORITY, emit, note, output_format, say, table_columns
from llmplan.commands.result import Rows

app = typer.Typer()

PlotOption = options.plot_option('the step time broken down by part', ': one stacked bar per layout shown.')


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
    from llmplan.commands.layout import layout as compute
    from llmplan.commands.training import split_notes

    fmt = output_format(fmt)
    rows = compute(seq=seq, global_batch=global_batch, batch_tokens=batch_tokens, gpu=gpu, gpus=gpus, top=top, explain_=explain_,
                   tp=tp, pp=pp, vp=vp, cp=cp, ep=ep, zero=zero, micro_batch=micro_batch, recompute=recompute, dtype=dtype,
                   attention=attention, dropout=dropout, overlap_dp=overlap_dp, stack=stack, compile_=compile_,
                   tp_across_nodes=tp_across_nodes, gpus_per_node=gpus_per_node, intra_bw=intra_bw, inter_bw=inter_bw,
                   matmul_efficiency=matmul_efficiency, plot=plot, presets=presets, **source, **shape_flags)
    if fmt != "table":
        say(rows)
        emit(rows, fmt)
        return
    d = rows.detail
    before, after = split_notes(rows)
    say(Rows(said=before))
    title = (f"Fastest layouts that fit: {d.model} on {d.gpus} x {d.cluster.gpu} ({d.cluster.dtype}, {d.run.software.id}), {d.run.global_batch} x {d.run.seq} tokens per step "
             f"({d.evaluated:,} valid layouts timed)")
    emit(rows, "table", title=title, columns=["rank"] + table_columns(rows), labels=TABLE_LABELS, priority=TABLE_PRIORITY)
    best = rows[0]
    note(f"best: {best['tokens_per_second']:,.0f} tokens/s, MFU {best['mfu']:.1%}, HFU {best['hfu']:.1%}"
         + ("" if best["sequence_parallel"] or best["tp"] == 1 else "; without sequence parallelism"))
    say(Rows(said=after))
