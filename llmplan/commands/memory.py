"""`llmplan memory` as a function: GPU memory for inference and training, per GPU, and whether it fits."""

from __future__ import annotations

from typing import Any, Optional

from llmplan.commands import args
from llmplan.commands.notes import note
from llmplan.commands.result import Rows, command
from llmplan.errors import InputError
from llmplan.model.source import resolve_model
from llmplan.presets import catalog
from llmplan.systems.memory.activations import RECOMPUTE

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


@command
def memory(
    params: Any = None, *, context: Any = None, dtype: Optional[str] = None, group_size: Any = None,
    kv_dtype: Optional[str] = None, batch: Any = 1, train: Any = False, precision: Optional[str] = None,
    stack: Optional[str] = None, optimizer: str = "adamw", optimizer_impl: Optional[str] = None, seq: Any = None,
    recompute: str = "none", attention: str = "auto", zero: Any = 0, gpus: Any = 1, tp: Any = 1, pp: Any = 1,
    sequence_parallel: Any = False, cp: Any = 1, ep: Any = 1, lora_rank: Any = 0, activations: str = "count",
    overhead: Optional[str] = None, gpu: Any = None, phases: Any = False, plot: Any = None, presets: Any = None,
    **model_options: Any,
) -> Rows:
    """GPU memory per GPU for inference or one training step (`llmplan memory`): weights, gradients,
    optimizer states, activations, KV cache, by phase of the step; with `gpu` (an id, a size such as
    "24GB", or a list) one row per GPU with whether it fits and what would.

    Example: llmplan.memory(preset="llama-3.1-8b", train=True, gpu="h100")[0]["total_bytes"]
    """
    source, shape_flags = args.model_flags(model_options, "memory")
    layers, d_model, heads, vocab = (args.integer(shape_flags[k], "--" + k.replace("_", "-")) for k in ("layers", "d_model", "heads", "vocab"))
    group_size, batch, zero, gpus, tp, pp, cp, ep, lora_rank, context, seq = (
        args.integer(value, name) for value, name in (
            (group_size, "--group-size"), (batch, "--batch"), (zero, "--zero"), (gpus, "--gpus"), (tp, "--tp"), (pp, "--pp"),
            (cp, "--cp"), (ep, "--ep"), (lora_rank, "--lora-rank"), (context, "--context"), (seq, "--seq")))
    train = args.switch(train, "--train")
    sequence_parallel = args.switch(sequence_parallel, "--sequence-parallel")
    phases = args.switch(phases, "--phases")
    gpu = [args.text(g) for g in args.listed(gpu) or []]
    if plot is not None:
        from llmplan.io.plots import check_plot_path

        check_plot_path(plot)
    from dataclasses import replace

    from llmplan.systems.memory import estimate as mem
    from llmplan.systems.memory import states

    if group_size is None:
        group_size = 64 if (dtype or "").strip().lower() == "nf4" else 128
    for value, name in ((layers, "--layers"), (d_model, "--d-model"), (heads, "--heads"), (vocab, "--vocab"),
                        (context, "--context"), (seq, "--seq"), (batch, "--batch"), (gpus, "--gpus"), (tp, "--tp"),
                        (pp, "--pp"), (cp, "--cp"), (ep, "--ep"), (group_size, "--group-size")):
        args.positive(value, name)
    if lora_rank < 0:
        raise InputError(f"--lora-rank must be positive, not {lora_rank}")
    if stack is not None and not train:
        raise InputError("--stack chooses the training software; add --train (serving memory does not depend on it)")
    software = None
    if train:  # the training software (imported only here: serving memory starts faster without it)
        from llmplan.systems.layout_search import PRECISION_OF, stack_memory_fields
        from llmplan.systems.stack import DEFAULT_MEMORY_STACK

        software = args.load_stack(stack or DEFAULT_MEMORY_STACK, presets)
    if precision is None:
        precision = PRECISION_OF[software.mixed_precision] if software is not None else "amp"
    if dtype is None:
        dtype = "fp32" if train and precision.strip().lower() == "fp32" else "bf16"
    dtype_name = args.parse_dtype(dtype, states.WEIGHT_DTYPES)
    kv_name = args.parse_dtype(kv_dtype, args.KV_DTYPES, "--kv-dtype") if kv_dtype else None
    resolved = resolve_model(**source, params=args.text(params), presets=presets, context=context, command="llmplan memory", **shape_flags)
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
        precision=args.choice(precision, states.PRECISIONS, "--precision"), optimizer=args.choice(optimizer, states.OPTIMIZERS, "--optimizer"),
        batch=batch, seq=length, kv_dtype=kv_name, recompute=args.choice(recompute, RECOMPUTE, "--recompute"),
        attention=args.choice(attention, mem.ATTENTION, "--attention"), zero=zero, gpus=gpus, tp=tp, pp=pp,
        optimizer_impl=args.choice(optimizer_impl, states.OPTIMIZER_IMPLS, "--optimizer-impl") if optimizer_impl else None,
        sequence_parallel=sequence_parallel, cp=cp, ep=ep, **(stack_memory_fields(software, zero) if software else {}),
        lora_rank=lora_rank, activations=args.choice(activations, ("count", "korthikanti"), "--activations"), overhead=over_bytes,
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
            _plot(plot, req, breakdown, model, [_gpu(cat, g)[:2] for g in gpu])
        return Rows(rows, detail=(req, breakdown, model))

    rows = []
    if gpu:
        from llmplan.systems.memory import advice

        cat = catalog(presets)
        for gid in gpu:
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
            rows.append(row)
    else:
        rows.append(base)

    for message in breakdown.notes:
        note(message)
    if plot is not None:
        _plot(plot, req, breakdown, model, [(r["gpu"], r["gpu_memory_bytes"]) for r in rows if "gpu" in r])
    return Rows(rows, detail=(req, breakdown, model))


def _plot(path, req, breakdown, model, capacities) -> None:
    """--plot: the parts alive in each phase (overhead in each), the peak marked, the GPUs as lines."""
    from llmplan.io.plots import plot_memory_phases
    from llmplan.units import format_bytes

    bars = [(name, {**parts, "overhead": breakdown.overhead_bytes}) for name, parts in breakdown.phases.items()]
    what = describe(req, breakdown, model).replace("Memory per GPU: ", "")
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


def describe(req, breakdown, model, stack=None) -> str:
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
