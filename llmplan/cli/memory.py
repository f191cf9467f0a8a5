"""`llmplan memory`: GPU memory for inference and training, per GPU, and whether it fits."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from llmplan.cli import model_options as mo
from llmplan.cli import options
from llmplan.cli.common import catalog, emit, expand, note, output_format, warn
from llmplan.errors import InputError
from llmplan.systems.layout import RECOMPUTE

app = typer.Typer()

SeqOption = options.seq_option("Training sequence length (default: --context, else the model's context).")
ContextOption = options.context_option("Tokens of context for inference (KV cache, prefill); default: the model's context.")
ParamsOption = options.params_option("Parameter count (e.g. 7B) when no shape is given: weights and model states only.", short=False)

PlotOption = options.plot_option('the parts of memory by phase of the step', ": stacked bars, each --gpu's memory as a line.")

# The parts of the peak, in the order the table shows them; their *_bytes keys add up to total_bytes.
PARTS = ("weights", "gradients", "optimizer", "activations", "autocast_cache", "kv_cache", "workspace", "transient", "overhead")
PART_LABELS = {
    "weights": "weights",
    "gradients": "gradients",
    "optimizer": "optimizer states",
    "activations": "activations",
    "autocast_cache": "autocast weight copies",
    "kv_cache": "KV cache",
    "workspace": "cuBLAS workspace",
    "transient": "temporaries of the phase",
    "overhead": "overhead (CUDA context, allocator)",
}
SHORT_LABELS = {"weights": "weights", "gradients": "grads", "optimizer": "optimizer", "activations": "activations",
                "autocast_cache": "autocast", "kv_cache": "KV cache", "workspace": "cuBLAS", "transient": "temps",
                "overhead": "overhead"}


def parse_overhead(text: str | None):
    """'auto' (None), '2GiB' (bytes) or '10%' (a fraction of the peak, returned as a negative marker)."""
    from llmplan.units import parse_memory

    if text is None or text.strip().lower() == "auto":
        return None, None
    text = text.strip()
    if text.endswith("%"):
        try:
            share = float(text[:-1]) / 100
        except ValueError:
            raise InputError(f"{text!r} is not an overhead; use auto, a size such as 2GiB, or a percentage such as 10%") from None
        if not 0 <= share < 10:
            raise InputError(f"{text!r}: the overhead percentage must be between 0% and 1000%")
        return None, share
    return parse_memory(text), None


def build_row(req, breakdown, model: str, stack: str | None = None) -> dict:
    peak = breakdown.peak_parts()
    row = {
        "model": model,
        "mode": "training" if req.train else "inference",
        "params": breakdown.params,
        "trainable_params": breakdown.trainable_params if req.train else None,
        "dtype": req.dtype,
        "stack": stack if req.train else None,
        "precision": req.precision if req.train else None,
        "optimizer": req.optimizer if req.train else None,
        "optimizer_impl": breakdown.optimizer_impl if req.train and req.optimizer in ("adamw", "adafactor") else None,
        "batch": req.batch,
        "seq": req.seq,
        "recompute": req.recompute if req.train else None,
        "attention": req.attention,
        "attention_kernel": breakdown.attention_kernel,
        "zero": req.zero if req.train else None,
        "gpus": req.gpus,
        "tp": req.tp,
        "pp": req.pp,
        "cp": req.cp,
        "ep": req.ep,
        "sequence_parallel": req.sequence_parallel,
        "lora_rank": req.lora_rank or None,
    }
    # Every part as alive at the peak (they add up to total_bytes); activations None when not counted.
    for part in PARTS:
        row[f"{part}_bytes"] = peak.get(part, 0)
    if breakdown.activations_bytes is None:
        row["activations_bytes"] = None
    row["total_bytes"] = breakdown.total_bytes
    row["peak_phase"] = breakdown.phase
    row["dominant"] = breakdown.dominant()
    # Sizes that are not parts of the peak: what one forward pass saves, every gradient of the step.
    row["saved_activations_bytes"] = breakdown.activations_bytes
    row["all_gradients_bytes"] = breakdown.gradients_bytes if req.train else None
    return {k: _whole(v) for k, v in row.items()}


def phase_rows(req, breakdown, model: str) -> list[dict]:
    """--phases: one row per phase of the step, its parts and its total (the same overhead in each)."""
    rows = []
    for name, parts in breakdown.phases.items():
        row = {"model": model, "phase": name}
        for part in PARTS:
            row[f"{part}_bytes"] = parts.get(part, 0) if part != "overhead" else breakdown.overhead_bytes
        row["total_bytes"] = sum(parts.values()) + breakdown.overhead_bytes
        row["peak"] = name == breakdown.phase
        rows.append({k: _whole(v) for k, v in row.items()})
    return rows


def _whole(value):
    """Byte counts as integers where they are whole (JSON shows 13476831232, not 13476831232.0)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


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
    from dataclasses import replace

    from llmplan.systems.memory import estimate as mem

    from llmplan.systems.memory import advice

    from llmplan.systems.memory import states

    fmt = output_format(fmt)
    if plot is not None:
        from llmplan.io.plots import check_plot_path

        check_plot_path(plot)
    if group_size is None:
        group_size = 64 if (dtype or "").strip().lower() == "nf4" else 128
    layers, d_model, heads, vocab = (shape_flags[k] for k in ("layers", "d_model", "heads", "vocab"))
    for value, name in ((layers, "--layers"), (d_model, "--d-model"), (heads, "--heads"), (vocab, "--vocab"),
                        (context, "--context"), (seq, "--seq"), (batch, "--batch"), (gpus, "--gpus"), (tp, "--tp"),
                        (pp, "--pp"), (cp, "--cp"), (ep, "--ep"), (group_size, "--group-size")):
        options.positive(value, name)
    if lora_rank < 0:
        raise InputError(f"--lora-rank must be positive, not {lora_rank}")
    if check and not gpu:
        raise InputError("--check needs --gpu ID (the GPU to check the fit on)")
    from llmplan.systems.layout_search import PRECISION_OF, stack_memory_fields
    from llmplan.systems.stack import DEFAULT_MEMORY_STACK

    if stack is not None and not train:
        raise InputError("--stack chooses the training software; add --train (serving memory does not depend on it)")
    software = options.load_stack(stack or DEFAULT_MEMORY_STACK, presets) if train else None
    if precision is None:
        precision = PRECISION_OF[software.mixed_precision] if software is not None else "amp"
    if dtype is None:
        dtype = "fp32" if train and precision.strip().lower() == "fp32" else "bf16"
    dtype_name = options.parse_dtype(dtype, states.WEIGHT_DTYPES)
    kv_name = options.parse_dtype(kv_dtype, options.KV_DTYPES, "--kv-dtype") if kv_dtype else None
    resolved = mo.resolve_model(**source, params=params, presets=presets, context=context, command="llmplan memory", **shape_flags)
    shape, model = resolved.shape, resolved.name
    for line in resolved.notes:
        note(line)
    count = resolved.params if shape is None else None
    over_bytes, over_share = parse_overhead(overhead)
    length = (seq or context) if train else context
    if shape is not None and length is None:
        length = shape.context
    req = mem.Request(
        params=count, shape=shape, dtype=dtype_name, group_size=group_size, train=train,
        precision=options.choice(precision, states.PRECISIONS, "--precision"), optimizer=options.choice(optimizer, states.OPTIMIZERS, "--optimizer"),
        batch=batch, seq=length, kv_dtype=kv_name, recompute=options.choice(recompute, RECOMPUTE, "--recompute"),
        attention=options.choice(attention, mem.ATTENTION, "--attention"), zero=zero, gpus=gpus, tp=tp, pp=pp,
        optimizer_impl=options.choice(optimizer_impl, states.OPTIMIZER_IMPLS, "--optimizer-impl") if optimizer_impl else None,
        sequence_parallel=sequence_parallel, cp=cp, ep=ep, **(stack_memory_fields(software, zero) if software else {}),
        lora_rank=lora_rank, activations=options.choice(activations, ("count", "korthikanti"), "--activations"), overhead=over_bytes,
    )
    if train and req.precision == "amp" and dtype_name == "fp32":
        req = replace(req, precision="fp32")  # --train --dtype fp32: everything fp32
    breakdown = mem.estimate(req)
    if over_share is not None:
        req = replace(req, overhead=over_share * breakdown.peak_bytes)
        breakdown = mem.estimate(req)
    base = build_row(req, breakdown, model, software.id if software else None)
    from llmplan.rows import checked

    checked([base])  # a count beyond floating-point range is bad input, as in compute and loss (not nulls)
    if phases:
        if not train:
            raise InputError("--phases lists the phases of a training step; add --train")
        for message in breakdown.notes:
            note(message)
        rows = phase_rows(req, breakdown, model)
        if plot is not None:
            cat = catalog(presets)
            _plot(plot, req, breakdown, model, [_gpu(cat, g)[:2] for g in (gpu or []) if g.strip() != "-"])
        if fmt == "table":
            _phase_table(rows, breakdown, req, model)
        else:
            emit(rows, fmt)
        return

    rows = []
    not_fitting = []
    if gpu:
        cat = catalog(presets)
        for gid in expand(gpu, str):
            gpu_id, capacity, datasheet = _gpu(cat, gid)
            row = dict(base)
            row["gpu"] = gpu_id
            row["gpu_memory_bytes"] = capacity
            row["gpu_datasheet_memory_bytes"] = datasheet
            row["fits"] = breakdown.total_bytes <= capacity
            row["headroom_bytes"] = _whole(capacity - breakdown.total_bytes)
            hints = advice.advice(req, capacity) if not row["fits"] or shape is not None else {}
            row["min_gpus"] = hints.get("min_gpus")
            row["max_batch"] = hints.get("max_batch")
            row["max_context"] = hints.get("max_context")
            if not row["fits"]:
                not_fitting.append(row)
            rows.append(row)
    else:
        rows.append(base)

    for message in breakdown.notes:
        note(message)
    if plot is not None:
        _plot(plot, req, breakdown, model, [(r["gpu"], r["gpu_memory_bytes"]) for r in rows if "gpu" in r])
    if fmt == "table":
        _table(rows, breakdown, req, model)
    else:
        emit(rows, fmt)
    if check and not_fitting:
        raise typer.Exit(3)


def _plot(path, req, breakdown, model, capacities) -> None:
    """--plot: the parts alive in each phase (overhead in each), the peak marked, the GPUs as lines."""
    from llmplan.io.plots import plot_memory_phases
    from llmplan.units import format_bytes

    bars = [(name, {**parts, "overhead": breakdown.overhead_bytes}) for name, parts in breakdown.phases.items()]
    what = _describe(req, breakdown, model).replace("Memory per GPU: ", "")
    title = (f"Memory per GPU by phase of the step: {what}\n"
             f"peak {format_bytes(breakdown.total_bytes, binary=False)} at the {breakdown.phase}")
    written = plot_memory_phases(path, bars, PART_LABELS, capacities=capacities, peak=breakdown.phase, title=title)
    note(f"wrote {written}")


def _gpu(cat, text: str) -> tuple[str, int, int]:
    """(id, usable memory, datasheet memory) in bytes of a catalog GPU, or of an anonymous GPU given
    by its size (24GB, 80GiB: both the size given)."""
    found = cat.find("gpus", text)
    if found is not None:  # what the device reports, where known
        return found.id, found.get("device_memory_bytes") or found["memory_bytes"], found["memory_bytes"]
    if text.strip()[:1].isdigit():
        from llmplan.units import parse_memory

        size = parse_memory(text)
        if size <= 0:
            raise InputError(f"--gpu {text!r}: a GPU needs some memory; give a size such as 24GB or a catalog id (llmplan gpus)")
        return text.strip(), size, size
    return cat.get("gpus", text).id, 0, 0  # unknown id: the catalog's error, with suggestions


def _describe(req, breakdown, model, stack=None) -> str:
    from llmplan.units import format_count

    if req.train:
        what = f"training{f' ({stack})' if stack and stack != 'ddp' else ''}, {req.precision}{'' if req.precision == 'fp32' else ' ' + req.dtype}, {req.optimizer}"
        if breakdown.optimizer_impl and req.optimizer in ("adamw", "adafactor"):
            what += f" ({breakdown.optimizer_impl})"
        what += f", batch {req.batch} x {req.seq or '-'}"
        if breakdown.attention_kernel:
            what += f", {breakdown.attention_kernel} attention"
        if req.zero or req.gpus > 1:
            what += f", ZeRO-{req.zero} on {req.gpus} GPUs"
        layout = [f"{k} {v}" for k, v in (("tp", req.tp), ("pp", req.pp), ("cp", req.cp), ("ep", req.ep)) if v > 1]
        if layout:
            what += ", " + " ".join(layout) + (" +SP" if req.sequence_parallel and req.tp > 1 else "")
        if req.lora_rank:
            what += f", LoRA r={req.lora_rank}"
    else:
        what = f"inference, {req.dtype}" + (f", batch {req.batch} x {req.seq} context" if req.seq else "")
    size = f"{format_count(breakdown.params)} params"
    return f"Memory per GPU: {model if model.endswith(' params') else f'{model} ({size})'}, {what}"


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
    emit(lines, "table", title=_describe(req, breakdown, model, rows[0].get("stack")), columns=["part", "gb", "gib_bytes", "share"],
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
    emit(lines, "table", title=_describe(req, breakdown, model, rows[0].get("stack")) + ": each phase of the step", columns=["phase", *shown, "total"],
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
