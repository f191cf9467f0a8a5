"""`llmplan throughput`: step time, MFU and where the time goes, for one parallel layout.

The options it shares with `llmplan layout` live in cli/options.py, its table's columns in cli/common.py;
the work is llmplan.commands.throughput (the model, run, cluster and row: llmplan.commands.training).
"""

from __future__ import annotations

import typer

from llmplan.cli import options
from llmplan.cli.common import TABLE_LABELS, TABLE_PRIORITY, emit, note, output_format, say, table_columns
from llmplan.commands.result import Rows

COMPUTE_LABELS = {"matmul": "matmuls", "attention": "attention", "elementwise": "element-wise", "recompute": "recompute",
                  "compute_other": "other"}

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
    from llmplan.commands.throughput import throughput as compute
    from llmplan.commands.training import split_notes

    fmt = output_format(fmt)
    rows = compute(seq=seq, global_batch=global_batch, batch_tokens=batch_tokens, micro_batch=micro_batch, dtype=dtype, gpu=gpu,
                   gpus=gpus, tp=tp, sequence_parallel=sequence_parallel, pp=pp, vp=vp, cp=cp, ep=ep, zero=zero, recompute=recompute,
                   attention=attention, dropout=dropout, overlap_dp=overlap_dp, stack=stack, compile_=compile_,
                   gpus_per_node=gpus_per_node, intra_bw=intra_bw, inter_bw=inter_bw, matmul_efficiency=matmul_efficiency,
                   plot=plot, presets=presets, **source, **shape_flags)
    if fmt != "table":
        say(rows)
        emit(rows, fmt)
        return

    d, row = rows.detail, rows[0]
    before, after = split_notes(rows)
    say(Rows(said=before))
    title = (f"Training step: {d.model} on {d.gpus} x {d.cluster.gpu} ({d.cluster.dtype}, {d.run.software.id}), {d.run.global_batch} x {d.run.seq} tokens, "
             f"{row['micro_batches']} micro-batches of {d.micro_batch} per replica")
    emit([row], "table", title=title, columns=table_columns([row]), labels=TABLE_LABELS, priority=TABLE_PRIORITY)
    parts = sorted(d.step.PARTS, key=lambda p: -row[f"{p}_seconds"])
    note(f"{row['tokens_per_second']:,.0f} tokens/s; MFU {row['mfu']:.1%}, HFU {row['hfu']:.1%}; "
         f"largest costs: " + ", ".join(f"{p.replace('_', ' ')} {row[f'{p}_fraction']:.0%}" for p in parts[:3]))
    if row["compute_seconds"] > 0:
        note(f"compute {row['compute_seconds']:.3g} s: " + ", ".join(f"{COMPUTE_LABELS[p]} {row[f'{p}_seconds']:.3g} s" for p in d.step.COMPUTE_PARTS)
             + " (other: host issue time beyond the GPU's, SMs held by hidden collectives, the slowest GPU)")
    say(Rows(said=after))
