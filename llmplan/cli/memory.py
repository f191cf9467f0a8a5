"""`llmplan memory`: GPU memory for serving and training, per GPU, and whether it fits."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from llmplan.cli.common import FormatOption, PresetsOption, catalog, emit, expand, note, output_format, warn
from llmplan.errors import InputError

app = typer.Typer()

PARTS = ("weights", "gradients", "optimizer", "activations", "kv_cache", "workspace", "overhead")
PART_LABELS = {
    "weights": "weights",
    "gradients": "gradients",
    "optimizer": "optimizer states",
    "activations": "activations",
    "kv_cache": "KV cache",
    "workspace": "cuBLAS workspace",
    "transient": "step temporaries",
    "overhead": "overhead (CUDA context, allocator)",
}


def _positive(value: Optional[int], name: str) -> None:
    if value is not None and value <= 0:
        raise InputError(f"{name} must be a positive whole number, not {value}")


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


def build_row(req, breakdown, model: str) -> dict:
    row = {
        "model": model,
        "mode": "training" if req.train else "inference",
        "params": breakdown.params,
        "trainable_params": breakdown.trainable_params if req.train else None,
        "dtype": req.dtype,
        "precision": req.precision if req.train else None,
        "optimizer": req.optimizer if req.train else None,
        "batch": req.batch,
        "seq": req.seq,
        "recompute": req.recompute if req.train else None,
        "attention": req.attention,
        "zero": req.zero if req.train else None,
        "gpus": req.gpus,
        "tp": req.tp,
        "pp": req.pp,
        "lora_rank": req.lora_rank or None,
        "weights_bytes": breakdown.weights_bytes,
        "gradients_bytes": breakdown.gradients_bytes,
        "optimizer_bytes": breakdown.optimizer_bytes,
        "activations_bytes": breakdown.activations_bytes,
        "kv_cache_bytes": breakdown.kv_cache_bytes,
        "workspace_bytes": breakdown.workspace_bytes,
        "transient_bytes": breakdown.at_peak.get("transient", 0),
        "overhead_bytes": breakdown.overhead_bytes,
        "total_bytes": breakdown.total_bytes,
        "peak_phase": breakdown.phase,
        "dominant": breakdown.dominant(),
    }
    return {k: _whole(v) for k, v in row.items()}


def _whole(value):
    """Byte counts as integers where they are whole (JSON shows 13476831232, not 13476831232.0)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@app.command(help="""GPU memory per GPU for serving or one training step: weights, gradients, optimizer, activations, KV cache.

total_bytes is the PEAK per GPU (the moment of the step when the most is alive) plus an overhead for the CUDA context and the allocator (--overhead; 0 leaves PyTorch's own allocations only).

Activations count, tensor by tensor, what PyTorch keeps for backward in a LLaMA-style block (checked against H100 measurements); --activations korthikanti gives the textbook formula.

With --gpu: whether it fits, the headroom, and if not the fewest GPUs, the largest micro-batch and the longest context that fit (--check: exit 3 when it does not fit).

Examples:

  llmplan memory --params 7B --dtype bf16

  llmplan memory --preset llama-2-7b --batch 8 --context 4096 --gpu h100

  llmplan memory --preset llama-2-7b --train --batch 1 --seq 4096 --recompute full --gpu a100

  llmplan memory --params 7.5B --train --precision mixed --zero 3 --gpus 64

  llmplan memory --preset llama-2-7b --train --dtype nf4 --lora-rank 16 --gpu rtx-4090 --check
""")
def memory(
    params: Annotated[Optional[str], typer.Option("--params", help="Parameter count (e.g. 7B) when no shape is given: weights and model states only.", show_default=False)] = None,
    preset: Annotated[Optional[str], typer.Option("--preset", "-p", help="A models preset id or alias.", show_default=False)] = None,
    hf_config: Annotated[Optional[Path], typer.Option("--hf-config", help="A local Hugging Face config.json (or its folder).", show_default=False)] = None,
    layers: Annotated[Optional[int], typer.Option("--layers", help="Layers.", show_default=False)] = None,
    d_model: Annotated[Optional[int], typer.Option("--d-model", help="Model width.", show_default=False)] = None,
    heads: Annotated[Optional[int], typer.Option("--heads", help="Attention heads.", show_default=False)] = None,
    kv_heads: Annotated[Optional[int], typer.Option("--kv-heads", help="Key/value heads (GQA). Default: --heads.", show_default=False)] = None,
    head_dim: Annotated[Optional[int], typer.Option("--head-dim", help="Width of one head. Default: d-model / heads.", show_default=False)] = None,
    ffn: Annotated[Optional[int], typer.Option("--ffn", help="FFN width. Default: LLaMA's 8/3*d rounded up to 256 (swiglu) or 4*d.", show_default=False)] = None,
    mlp: Annotated[str, typer.Option("--mlp", help="swiglu, geglu, gelu or relu.")] = "swiglu",
    vocab: Annotated[Optional[int], typer.Option("--vocab", help="Vocabulary.", show_default=False)] = None,
    tied: Annotated[bool, typer.Option("--tied-embeddings/--untied-embeddings", help="Share the input embedding with the output head.")] = False,
    context: Annotated[Optional[int], typer.Option("--context", help="Tokens of context for serving (KV cache, prefill); default: the model's context.", show_default=False)] = None,
    dtype: Annotated[Optional[str], typer.Option("--dtype", help="Weights: fp32, fp16, bf16, fp8, int8, int4, nf4 (training: the compute type). Default: bf16 (fp32 with --precision fp32).", show_default=False)] = None,
    group_size: Annotated[Optional[int], typer.Option("--group-size", help="Values per quantisation scale (fp8, int8, int4, nf4). Default 128; 64 for nf4 (bitsandbytes' block, as in QLoRA).", show_default=False)] = None,
    kv_dtype: Annotated[Optional[str], typer.Option("--kv-dtype", help="KV cache format (default: 16-bit, fp32 with --dtype fp32).", show_default=False)] = None,
    batch: Annotated[int, typer.Option("--batch", "-b", help="Sequences per GPU (micro-batch when training).")] = 1,
    train: Annotated[bool, typer.Option("--train", help="One training step instead of serving.")] = False,
    precision: Annotated[str, typer.Option("--precision", help="Training: fp32, amp (fp32 weights, autocast), mixed (16-bit weights + fp32 master, ZeRO's 16 B/param) or pure.")] = "amp",
    optimizer: Annotated[str, typer.Option("--optimizer", help="adamw (PyTorch's default foreach implementation: a 1-state temporary at step), adamw-8bit, sgd, sgd-momentum, adafactor or lion.")] = "adamw",
    seq: Annotated[Optional[int], typer.Option("--seq", help="Training sequence length (default: --context, else the model's context).", show_default=False)] = None,
    recompute: Annotated[str, typer.Option("--recompute", help="Activation recomputation: none, selective or full.")] = "none",
    attention: Annotated[str, typer.Option("--attention", help="flash (SDPA kernels) or eager (keeps the a*s^2 scores).")] = "flash",
    zero: Annotated[int, typer.Option("--zero", help="ZeRO stage 0-3 over the data-parallel GPUs (FSDP = 3).")] = 0,
    gpus: Annotated[int, typer.Option("--gpus", help="GPUs in all (data parallel = gpus / (tp * pp)).")] = 1,
    tp: Annotated[int, typer.Option("--tp", help="Tensor-parallel degree.")] = 1,
    pp: Annotated[int, typer.Option("--pp", help="Pipeline-parallel degree.")] = 1,
    lora_rank: Annotated[int, typer.Option("--lora-rank", help="Train LoRA adapters of this rank on every linear (frozen base; with --dtype nf4: QLoRA).")] = 0,
    activations: Annotated[str, typer.Option("--activations", help="count (tensor by tensor) or korthikanti (Korthikanti et al. 2022, Table 2).")] = "count",
    overhead: Annotated[Optional[str], typer.Option("--overhead", help="CUDA context + allocator margin: auto (0.8 GB + 5% of the peak), a size such as 2GiB, a percentage, or 0.", show_default=False)] = None,
    gpu: Annotated[Optional[list[str]], typer.Option("--gpu", "-g", help="Check the fit on this GPU (catalog id or alias; repeatable; '-' reads ids from stdin): one row per GPU.", show_default=False)] = None,
    check: Annotated[bool, typer.Option("--check", help="Exit 3 when it does not fit a --gpu.")] = False,
    fmt: FormatOption = None,
    presets: PresetsOption = None,
) -> None:
    from dataclasses import replace

    from llmplan import memory as mem
    from llmplan.units import parse_count

    fmt = output_format(fmt)
    if group_size is None:
        group_size = 64 if (dtype or "").strip().lower() == "nf4" else 128
    for value, name in ((layers, "--layers"), (d_model, "--d-model"), (heads, "--heads"), (vocab, "--vocab"),
                        (context, "--context"), (seq, "--seq"), (batch, "--batch"), (gpus, "--gpus"), (tp, "--tp"),
                        (pp, "--pp"), (group_size, "--group-size")):
        _positive(value, name)
    if lora_rank < 0:
        raise InputError(f"--lora-rank must be positive, not {lora_rank}")
    if check and not gpu:
        raise InputError("--check needs --gpu ID (the GPU to check the fit on)")
    if dtype is None:
        dtype = "fp32" if train and precision.strip().lower() == "fp32" else "bf16"
    dtype_name = _choice(dtype, mem.WEIGHT_DTYPES, "--dtype")
    kv_name = _choice(kv_dtype, ("fp32", "fp16", "bf16", "fp8", "int8", "int4"), "--kv-dtype") if kv_dtype else None
    shape, model = _shape(params, preset, hf_config, presets, dict(
        layers=layers, d_model=d_model, heads=heads, kv_heads=kv_heads, head_dim=head_dim, ffn=ffn, mlp=mlp,
        vocab=vocab, tied=tied, context=context))
    count = parse_count(params, "a parameter count") if params is not None and shape is None else None
    over_bytes, over_share = parse_overhead(overhead)
    length = (seq or context) if train else context
    if shape is not None and length is None:
        length = shape.context
    req = mem.Request(
        params=count, shape=shape, dtype=dtype_name, group_size=group_size, train=train,
        precision=_choice(precision, mem.PRECISIONS, "--precision"), optimizer=_choice(optimizer, mem.OPTIMIZERS, "--optimizer"),
        batch=batch, seq=length, kv_dtype=kv_name, recompute=_choice(recompute, ("none", "selective", "full"), "--recompute"),
        attention=_choice(attention, ("flash", "eager"), "--attention"), zero=zero, gpus=gpus, tp=tp, pp=pp,
        lora_rank=lora_rank, activations=_choice(activations, ("count", "korthikanti"), "--activations"), overhead=over_bytes,
    )
    if train and req.precision == "amp" and dtype_name == "fp32":
        req = replace(req, precision="fp32")  # --train --dtype fp32: everything fp32
    breakdown = mem.estimate(req)
    if over_share is not None:
        req = replace(req, overhead=over_share * breakdown.peak_bytes)
        breakdown = mem.estimate(req)
    base = build_row(req, breakdown, model)

    rows = []
    not_fitting = []
    if gpu:
        cat = catalog(presets)
        for gid in expand(gpu, str):
            g = cat.get("gpus", gid)
            capacity = g.get("device_memory_bytes") or g["memory_bytes"]  # what the device reports, where known
            row = dict(base)
            row["gpu"] = g.id
            row["gpu_memory_bytes"] = capacity
            row["gpu_datasheet_memory_bytes"] = g["memory_bytes"]
            row["fits"] = breakdown.total_bytes <= capacity
            row["headroom_bytes"] = _whole(capacity - breakdown.total_bytes)
            hints = mem.advice(req, capacity) if not row["fits"] or shape is not None else {}
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
    if fmt == "table":
        _table(rows, breakdown, req, model)
    else:
        emit(rows, fmt)
    if check and not_fitting:
        raise typer.Exit(3)


def _choice(value: str, allowed, option: str) -> str:
    import difflib

    key = value.strip().lower()
    if key not in allowed:
        close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise InputError(f"{option} {value!r} is not one of {', '.join(allowed)}{hint}")
    return key


def _shape(params, preset, hf_config, presets, flags):
    from llmplan import arch

    sources = [name for name, given in (("--params", params), ("--preset", preset), ("--hf-config", hf_config)) if given is not None]
    shape_flags = any(flags[k] is not None for k in ("layers", "d_model", "heads", "vocab", "kv_heads", "head_dim", "ffn"))
    if shape_flags:
        sources.append("shape flags")
    if not sources:
        raise InputError("give --params N, --preset ID, --hf-config PATH or the shape as flags (--layers --d-model --heads --vocab); see 'llmplan memory --help'")
    if len(sources) > 1:
        raise InputError(f"give one model: {' and '.join(sources)} were both given")
    if params is not None:
        return None, f"{params} params"
    if preset is not None:
        p = catalog(presets).get("models", preset)
        shape = arch.Shape.from_preset(p)
        return shape, p.id
    if hf_config is not None:
        from llmplan.hfconfig import shape_from_hf_config

        shape = shape_from_hf_config(hf_config)
        return shape, shape.name or str(hf_config)
    missing = [f for f, k in (("--layers", "layers"), ("--d-model", "d_model"), ("--heads", "heads"), ("--vocab", "vocab")) if flags[k] is None]
    if missing:
        raise InputError(f"a shape given as flags also needs {', '.join(missing)}")
    arch.check_flag_heads(flags["d_model"], flags["heads"], flags["head_dim"])
    shape = arch.Shape(
        layers=flags["layers"], d_model=flags["d_model"], heads=flags["heads"], kv_heads=flags["kv_heads"],
        head_dim=flags["head_dim"], ffn=flags["ffn"], mlp=flags["mlp"].strip().lower(), vocab=flags["vocab"],
        context=flags["context"] or 2048, tied_embeddings=flags["tied"], name="custom",
    )
    return shape, "custom"


def _table(rows, breakdown, req, model) -> None:
    from llmplan.units import format_bytes, format_count

    total = breakdown.total_bytes
    peak = breakdown.peak_parts()
    sizes = {**breakdown.parts(), "transient": peak.get("transient", 0)}
    lines = []
    for part in ("weights", "gradients", "optimizer", "activations", "kv_cache", "workspace", "transient", "overhead"):
        value = sizes.get(part, 0)
        if part == "activations" and breakdown.activations_bytes is None:
            lines.append({"part": PART_LABELS[part], "gb": "not counted", "gib_bytes": None, "at_peak_bytes": None, "share": "-"})
            continue
        if value == 0 and part in ("gradients", "optimizer", "kv_cache", "transient"):
            continue
        alive = peak.get(part, 0)
        lines.append({"part": PART_LABELS[part], "gb": format_bytes(value, binary=False), "gib_bytes": value,
                      "at_peak_bytes": alive, "share": f"{100 * alive / total:.1f}%"})
    lines.append({"part": "total = peak per GPU", "gb": format_bytes(total, binary=False), "gib_bytes": total, "at_peak_bytes": total, "share": "100.0%"})
    if req.train:
        what = f"training, {req.precision}{'' if req.precision == 'fp32' else ' ' + req.dtype}, {req.optimizer}, batch {req.batch} x {req.seq or '-'}"
        if req.zero or req.gpus > 1:
            what += f", ZeRO-{req.zero} on {req.gpus} GPUs"
        if req.tp > 1 or req.pp > 1:
            what += f", tp {req.tp} pp {req.pp}"
        if req.lora_rank:
            what += f", LoRA r={req.lora_rank}"
    else:
        what = f"serving, {req.dtype}" + (f", batch {req.batch} x {req.seq} context" if req.seq else "")
    size = f"{format_count(breakdown.params)} params"
    title = f"Memory per GPU: {model if model.endswith(' params') else f'{model} ({size})'}, {what}"
    emit(lines, "table", title=title, columns=["part", "gb", "gib_bytes", "at_peak_bytes", "share"],
         labels={"part": "", "gb": "GB", "gib_bytes": "GiB", "at_peak_bytes": "alive at peak", "share": "of peak"})
    dom = breakdown.dominant()
    note(f"the peak comes at the {breakdown.phase}; the largest part of it is {PART_LABELS[dom]} ({100 * peak[dom] / total:.0f}%)")
    for row in rows:
        if "gpu" not in row:
            continue
        if row["fits"]:
            note(f"fits on {row['gpu']} ({format_bytes(row['gpu_memory_bytes'], binary=False)}): {format_bytes(row['headroom_bytes'])} headroom"
                 + (f"; up to batch {row['max_batch']}" if row.get("max_batch") else ""))
        else:
            warn(f"does not fit on {row['gpu']} ({format_bytes(row['gpu_memory_bytes'], binary=False)}): {format_bytes(-row['headroom_bytes'])} short")
            for hint in _tries(row, req, breakdown):
                note("try " + hint)
    # Without a GPU there is no capacity to check a hint against: none is offered (issue 15).


def _tries(row, req, breakdown) -> list[str]:
    """What to try when it does not fit: only changes computed to fit, each with the bytes it gives."""
    from llmplan import memory as mem
    from llmplan.units import format_bytes

    out = []
    if row.get("min_gpus"):
        out.append(f"{row['min_gpus']} GPUs" + (" with --zero 3" if req.train else f" with --tp {row['min_gpus'] // max(1, req.pp)}"))
    if row.get("max_batch") and row["max_batch"] < req.batch:
        out.append(f"--batch {row['max_batch']} (the largest that fits)")
    if row.get("max_context") and req.seq and row["max_context"] < req.seq:
        out.append(f"{'--seq' if req.train else '--context'} {row['max_context']} (the longest that fits)")
    checked = []
    for text, changed in _candidates(breakdown, req):
        try:
            total = mem.estimate(changed).total_bytes
        except InputError:  # not possible for this model (e.g. LoRA without a shape)
            continue
        if total <= row["gpu_memory_bytes"]:
            checked.append(f"{text} ({format_bytes(total, binary=False)} per GPU, fits)")
    return out + checked[:2]


def _candidates(breakdown, req) -> list[tuple[str, object]]:
    """Single changes to the request worth checking, as (the option to type, the changed request)."""
    from dataclasses import replace

    out: list[tuple[str, object]] = []
    if req.train:
        if req.recompute != "full" and breakdown.at_peak.get("activations", 0) > 0.1 * breakdown.total_bytes:
            out.append(("--recompute full", replace(req, recompute="full")))
        if not req.lora_rank:
            out.append(("--lora-rank 16", replace(req, lora_rank=16)))
            out.append(("--dtype nf4 --lora-rank 16 (QLoRA)", replace(req, dtype="nf4", lora_rank=16)))
        if req.optimizer == "adamw":
            out.append(("--optimizer adamw-8bit", replace(req, optimizer="adamw-8bit")))
    else:
        if req.dtype in ("fp32", "fp16", "bf16"):
            out.append(("--dtype int8", replace(req, dtype="int8")))
            out.append(("--dtype int4", replace(req, dtype="int4")))
        if req.kv_dtype is None or req.kv_dtype in ("fp32", "fp16", "bf16"):
            out.append(("--kv-dtype fp8", replace(req, kv_dtype="fp8")))
    return out
