"""`llmplan memory`: GPU memory for inference and training, per GPU, and whether it fits."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from llmplan.cli import options
from llmplan.cli.common import emit, expand, note, output_format, say, warn
from llmplan.commands.memory import PART_LABELS, PARTS, describe
from llmplan.errors import InputError

app = typer.Typer()

SeqOption = options.seq_option("Training sequence length (default: --context, else the model's context).")
ContextOption = options.context_option("Tokens of context for inference (KV cache, prefill); default: the model's context.")
ParamsOption = options.params_option("Parameter count (e.g. 7B) when no shape is given: weights and model states only.", short=False)

PlotOption = options.plot_option('the parts of memory by phase of the step', ": stacked bars, each --gpu's memory as a line.")

# What the table shows of the parts (the function's PARTS, PART_LABELS), short for the phase table.
SHORT_LABELS = {"weights": "weights", "gradients": "grads", "optimizer": "optimizer", "activations": "activations",
                "autocast_cache": "autocast", "kv_cache": "KV cache", "workspace": "cuBLAS", "transient": "temps",
                "overhead": "overhead"}


@app.command(help="""GPU memory per GPU for inference or one training step: weights, gradients, optimizer, activations, KV cache.

total_bytes is the PEAK per GPU (the moment of the step when the most is alive) plus an overhead for the CUDA context and the allocator (--overhead; 0 leaves PyTorch's own allocations only).

Activations count, tensor by tensor, what PyTorch keeps for backward in a LLaMA-style block (checked against H100 measurements); --activations korthikanti gives the textbook formula.

Training: the peak is the largest of the step's phases (end of forward, start of backward, the output head's, top and bottom layers' and the embedding's backward, the optimizer step), each the tensors alive then, with the attention kernel SDPA really dispatches (--attention auto) and the temporaries of the AdamW implementation (--optimizer-impl); --phases lists them all.

With --gpu: whether it fits, the headroom, and if not the fewest GPUs, the largest micro-batch and the longest context that fit (--check: exit 3 when it does not fit).

Examples:

  llmplan memory --params 7B --dtype bf16

  llmplan memory --preset llama-2-7b --batch 8 --context 4096 --gpu h100

  llmplan memory --preset llama-2-7b --train --batch 1 --seq 4096 --recompute full --gpu a100

  llmplan memory --params 7.5B --train --precision mixed --zero 3 --gpus 64

  llmplan memory --preset llama-2-7b --train --seq 4096 --optimizer-impl fused --phases

  llmplan memory --preset llama-2-7b --train --dtype nf4 --lora-rank 16 --gpu rtx-4090 --check
""")
@options.grouped(source=options.MODEL_SOURCE, shape_flags=options.SHAPE)
def memory(
    params: ParamsOption = None,
    source: options.Flags = None,
    shape_flags: options.Flags = None,
    context: ContextOption = None,
    dtype: options.MemoryDtypeOption = None,
    group_size: options.GroupSizeOption = None,
    kv_dtype: options.KvDtypeOption = None,
    batch: Annotated[int, typer.Option("--batch", "-b", help="Sequences per GPU (micro-batch when training).")] = 1,
    train: Annotated[bool, typer.Option("--train", help="One training step instead of inference.")] = False,
    precision: Annotated[Optional[str], typer.Option("--precision", help="Training: fp32, amp (fp32 weights, autocast), mixed (16-bit weights + fp32 master, ZeRO's 16 B/param) or pure. Default: the --stack's (amp for ddp, mixed for megatron, torchtitan, fsdp and deepspeed).", show_default=False)] = None,
    stack: options.MemoryStackOption = None,
    optimizer: Annotated[str, typer.Option("--optimizer", help="adamw, adamw-8bit, sgd, sgd-momentum, adafactor or lion.")] = "adamw",
    optimizer_impl: Annotated[Optional[str], typer.Option("--optimizer-impl", help="torch.optim implementation (AdamW, Adafactor): for-loop (AdamW: 2 temporaries of the largest tensor), foreach (a copy of every state tensor at once) or fused (AdamW: none). Default: what PyTorch 2.13 picks on CUDA when neither fused nor foreach is given: foreach for AdamW (fused=False alone means for-loop), for-loop for Adafactor.", show_default=False)] = None,
    seq: SeqOption = None,
    recompute: options.RecomputeOption = "none",
    attention: Annotated[str, typer.Option("--attention", help="auto (the kernel PyTorch SDPA dispatches: flash for fp16/bf16, memory-efficient for fp32, math for fp32 with GQA), or force flash, mem-efficient, math or eager (HF eager: keeps the a*s^2 scores).")] = "auto",
    zero: options.ZeroOption = 0,
    gpus: Annotated[int, typer.Option("--gpus", help="GPUs in all (data parallel = gpus / (tp * pp)).")] = 1,
    tp: options.TpOption = 1,
    pp: options.PpOption = 1,
    sequence_parallel: options.SequenceParallelOption = False,
    cp: options.CpOption = 1,
    ep: options.EpOption = 1,
    lora_rank: Annotated[int, typer.Option("--lora-rank", help="Train LoRA adapters of this rank on every linear (frozen base; with --dtype nf4: QLoRA).")] = 0,
    activations: Annotated[str, typer.Option("--activations", help="count (tensor by tensor) or korthikanti (Korthikanti et al. 2022, Table 2).")] = "count",
    overhead: Annotated[Optional[str], typer.Option("--overhead", help="CUDA context + allocator margin: auto (0.8 GB + 5% of the peak), a size such as 2GiB, a percentage, or 0.", show_default=False)] = None,
    gpu: Annotated[Optional[list[str]], typer.Option("--gpu", "-g", help="Check the fit on this GPU: a catalog id or alias, or a memory size such as 24GB for any GPU of that size (repeatable; '-' reads them from stdin): one row per GPU.", show_default=False)] = None,
    check: Annotated[bool, typer.Option("--check", help="Exit 3 when it does not fit a --gpu.")] = False,
    phases: Annotated[bool, typer.Option("--phases", help="Training: one row per phase of the step (end of forward ... optimizer step) with its parts and total.")] = False,
    plot: PlotOption = None,
    fmt: options.FormatOption = None,
    presets: options.PresetsOption = None,
) -> None:
    from llmplan.commands.memory import memory as compute

    fmt = output_format(fmt)
    if check and not gpu:
        raise InputError("--check needs --gpu ID (the GPU to check the fit on)")
    rows = compute(params, context=context, dtype=dtype, group_size=group_size, kv_dtype=kv_dtype, batch=batch, train=train,
                   precision=precision, stack=stack, optimizer=optimizer, optimizer_impl=optimizer_impl, seq=seq,
                   recompute=recompute, attention=attention, zero=zero, gpus=gpus, tp=tp, pp=pp,
                   sequence_parallel=sequence_parallel, cp=cp, ep=ep, lora_rank=lora_rank, activations=activations,
                   overhead=overhead, gpu=expand(gpu, str) if not phases else [g for g in gpu or [] if g.strip() != "-"],
                   phases=phases, plot=plot, presets=presets, **source, **shape_flags)
    say(rows)
    req, breakdown, model = rows.detail
    if fmt != "table":
        emit(rows, fmt)
    elif phases:
        _phase_table(rows, breakdown, req, model)
    else:
        _table(rows, breakdown, req, model)
    if check and any(row.get("fits") is False for row in rows):
        raise typer.Exit(3)


def _table(rows, breakdown, req, model) -> None:
    from llmplan.units import format_bytes

    total = breakdown.total_bytes
    peak = breakdown.peak_parts()
    lines = []
    for part in PARTS:
        alive = peak.get(part, 0)
        if part == "activations" and breakdown.activations_bytes is None:
            lines.append({"part": PART_LABELS[part], "gb": "not counted", "gib_bytes": None, "share": "-"})
            continue
        if alive == 0 and part not in ("weights", "overhead"):
            continue
        lines.append({"part": PART_LABELS[part], "gb": format_bytes(alive, binary=False), "gib_bytes": alive,
                      "share": f"{100 * alive / total:.1f}%"})
    lines.append({"part": f"total = peak per GPU ({breakdown.phase})", "gb": format_bytes(total, binary=False), "gib_bytes": total, "share": "100.0%"})
    emit(lines, "table", title=describe(req, breakdown, model, rows[0].get("stack")), columns=["part", "gb", "gib_bytes", "share"],
         labels={"part": "alive at the peak", "gb": "GB", "gib_bytes": "GiB", "share": "of peak"})
    dom = breakdown.dominant()
    note(f"the peak comes at the {breakdown.phase}; the largest part of it is {PART_LABELS[dom]} ({100 * peak[dom] / total:.0f}%)")
    if req.train and breakdown.activations_bytes is not None:
        note(f"one forward pass saves {format_bytes(breakdown.activations_bytes, binary=False)} of activations; "
             f"all gradients take {format_bytes(breakdown.gradients_bytes, binary=False)} (--phases shows every phase)")
    for row in rows:
        if "gpu" not in row:
            continue
        if row["fits"]:
            note(f"fits on {row['gpu']} ({format_bytes(row['gpu_memory_bytes'], binary=False)}): {format_bytes(row['headroom_bytes'], binary=False)} headroom"
                 + (f"; up to batch {row['max_batch']}" if row.get("max_batch") else ""))
        else:
            warn(f"does not fit on {row['gpu']} ({format_bytes(row['gpu_memory_bytes'], binary=False)}): {format_bytes(-row['headroom_bytes'], binary=False)} short")
            from llmplan.systems.memory.advice import what_to_try

            for change in what_to_try(req, breakdown, row["gpu_memory_bytes"], row):
                note("try " + _try_text(change, req))
    # Without a GPU there is no capacity to check a hint against: none is offered (issue 15).


def _phase_table(rows, breakdown, req, model) -> None:
    from llmplan.units import format_bytes

    shown = [p for p in PARTS if any(r[f"{p}_bytes"] for r in rows)]
    lines = []
    for r in rows:
        line = {"phase": r["phase"] + (" *" if r["peak"] else "")}
        for p in shown:
            line[p] = format_bytes(r[f"{p}_bytes"], binary=False)
        line["total"] = format_bytes(r["total_bytes"], binary=False)
        lines.append(line)
    emit(lines, "table", title=describe(req, breakdown, model, rows[0].get("stack")) + ": each phase of the step", columns=["phase", *shown, "total"],
         labels={"phase": "phase (* = peak)", **{p: SHORT_LABELS[p] for p in shown}, "total": "total"},
         priority=["phase", "total", "weights", "gradients", "optimizer", "activations"])


def _try_text(change, req) -> str:
    """How a thing to try (llmplan.systems.memory.advice.Try) is said: the options to type, and for a
    checked change the peak per GPU it gives."""
    from llmplan.units import format_bytes

    c = change.changes
    if change.total_bytes is None:  # a limit the search found
        if "gpus" in c:
            return f"{c['gpus']} GPUs" + (" with --zero 3" if req.train else f" with --tp {c['tp']}")
        if "batch" in c:
            return f"--batch {c['batch']} (the largest that fits)"
        return f"{'--seq' if req.train else '--context'} {c['seq']} (the longest that fits)"
    options = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in c.items())
    named = f" ({change.name})" if change.name else ""
    return f"{options}{named} ({format_bytes(change.total_bytes, binary=False)} per GPU, fits)"
