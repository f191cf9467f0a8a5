"""`llmplan arch` as a function: a model's shape -> exact parameter count, FLOPs per token, KV cache; shape proposals."""

from __future__ import annotations

from typing import Any, Optional

from llmplan.commands import args
from llmplan.commands.notes import note
from llmplan.commands.result import Rows, command
from llmplan.errors import InputError


def shape_row(shape, seq: int | None, kv_bytes: float, kv_dtype: str) -> dict:
    """One flat row for a shape, base units (counts, FLOPs, bytes)."""
    from llmplan.model import arch

    flops = arch.flops_per_token(shape, seq)
    return {
        "model": shape.name or "custom",
        "architecture": shape.family,
        "layers": shape.total_layers,
        "encoder_layers": shape.encoder_layers or None,
        "decoder_layers": shape.decoder_layers or None,
        "d_model": shape.d_model,
        "heads": shape.heads,
        "kv_heads": None if shape.is_mla else shape.n_kv_heads,
        "head_dim": (shape.qk_nope_head_dim + shape.qk_rope_head_dim) if shape.is_mla else _whole(shape.attn_width / shape.heads),
        "ffn": shape.d_ffn,
        "mlp": shape.mlp,
        "experts": shape.experts or None,
        "experts_per_token": shape.experts_per_token or None,
        "vocab": shape.vocab,
        "context": shape.context,
        "tied_embeddings": shape.tied_embeddings,
        "positions": shape.positions,
        "norm": shape.norm,
        "params": arch.params(shape),
        "embedding_params": arch.embedding_params(shape),
        "non_embedding_params": arch.non_embedding_params(shape),
        "active_params": arch.active_params(shape),
        "seq": flops["seq"],
        "flops_per_token_6n": flops["six_n"],
        "flops_per_token_matmul": flops["matmul"],
        "flops_per_token_matmul_causal": flops["matmul_causal"],
        "matmul_vs_6n": flops["ratio"],
        "kv_dtype": kv_dtype,
        "kv_cache_bytes_per_token": arch.kv_cache_bytes_per_token(shape, kv_bytes),
    }


def model_row(model, seq: int | None, kv_bytes: float, kv_dtype: str) -> dict:
    """One row for a resolved model (llmplan.model.source.Model): its shape's row, the preset's
    published figures, and a checkpoint's stored count by dtype."""
    if model.shape is not None:
        row = shape_row(model.shape, seq, kv_bytes, kv_dtype)
        row["model"] = model.name
    else:  # a checkpoint without a config.json beside it: the stored count only
        row = {"model": model.name, "architecture": None, "params": model.params, "active_params": model.active_params}
    if model.source == "preset":
        # The headline figure (7B, 70B) and, where the reference has one, the exact published count.
        row["published_params"] = model.published_params
        row["published_exact_params"] = model.published_exact_params
        published = model.published_exact_params or model.published_params
        row["derived_vs_published"] = row["params"] / published if published else None
        row["published_active_params"] = model.published_active_params
    ck = model.checkpoint
    if ck is not None:
        row["params"] = model.params  # what the checkpoint stores (buffers left out), not the config's count
        row["checkpoint_files"] = len(ck.files)
        row["checkpoint_tensors"] = len(ck.tensors)
        row["checkpoint_bytes"] = ck.tensor_bytes
        row["checkpoint_buffer_values"] = ck.buffer_elements
        row["config_params"] = None if model.shape is None else shape_params(model.shape)
        for dtype, part in ck.by_dtype().items():
            key = dtype.lower()
            row[f"{key}_params"] = part["params"]
            row[f"{key}_bytes"] = part["bytes"]
    return row


def shape_params(shape) -> int:
    from llmplan.model import arch

    return arch.params(shape)


def _whole(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def _int_option(value: Optional[int], name: str) -> None:
    if value is not None and value <= 0:
        raise InputError(f"{name} must be a positive whole number, not {value}")


class Detail:
    """What the command line's table is drawn from: the models given, whether shapes were proposed, the KV dtype."""

    def __init__(self, models: list, proposed: bool, kv_dtype: str) -> None:
        self.models, self.proposed, self.kv_dtype = models, proposed, kv_dtype


@command
def arch(
    *, target: Any = None, proposals: Any = 3, context: Any = None, seq: Any = None, kv_dtype: str = "bf16",
    presets: Any = None, **model_options: Any,
) -> Rows:
    """A model's exact parameter count, FLOPs per training token and KV cache per token (`llmplan arch`),
    one row per model given (preset, hf, hf_config, safetensors: one or a list each, or the shape as
    flags such as layers=, d_model=, heads=, vocab=), then for each `target` size (a count such as
    "7B", or a list) the `proposals` shapes nearest it.

    Example: llmplan.arch(preset=["llama-2-7b", "llama-3.1-8b"])[0]["params"]; llmplan.arch(target="7B")
    """
    from llmplan.dtypes import get as get_dtype
    from llmplan.model import propose
    from llmplan.model.source import resolve_models
    from llmplan.units import format_count, parse_count

    sources, shape_flags = args.model_flags(model_options, "arch", full=True)
    proposals, context, seq = (args.integer(v, n) for v, n in ((proposals, "--proposals"), (context, "--context"), (seq, "--seq")))
    targets = [args.text(t) for t in args.listed(target) or []]
    dtype = get_dtype(kv_dtype)
    for value, name in ((seq, "--seq"), (proposals, "--proposals"), (context, "--context")):
        _int_option(value, name)
    if proposals > 20:  # the command line's range 1 to 20
        raise InputError(f"--proposals must be between 1 and 20, not {proposals}")
    target_kv = None
    if targets and shape_flags.get("kv_heads") is not None and all(shape_flags.get(k) is None for k in ("layers", "d_model", "heads")):
        target_kv = shape_flags["kv_heads"]  # --target 70B --kv-heads 8: the proposals' KV heads
        shape_flags["kv_heads"] = None
    models = resolve_models(**sources, presets=presets, context=context, need_shape=True, **shape_flags)
    if not (models or targets):
        raise InputError("give --preset ID, --hf-config PATH, --safetensors PATH, --target SIZE or the shape as flags (--layers --d-model --heads --vocab); see 'llmplan arch --help'")

    rows: list[dict] = []
    for model in models:
        for line in model.notes:
            note(line)
        rows.append(model_row(model, seq, dtype.bytes, dtype.name))
    if targets:
        for size in [parse_count(text, "a parameter count") for text in targets]:
            shapes = propose.propose(size, proposals, vocab=shape_flags["vocab"] or 32000, context=context or 4096, kv_heads=target_kv)
            for shape in shapes:
                row = shape_row(shape, seq, dtype.bytes, dtype.name)
                row["target_params"] = size
                row["gap_params"] = row["params"] - size
                row["gap_fraction"] = row["gap_params"] / size
                rows.append(row)
            gap = abs(rows[-1]["gap_fraction"])
            if gap > propose.PROPOSAL_TOLERANCE:
                note(f"no shape of the family lies within {propose.PROPOSAL_TOLERANCE:.0%} of {format_count(size)}: widths step by 1024 (256 below 2560), depth follows width in steps of 4 or 8, so the nearest is {gap:.1%} off")
            elif len(shapes) < proposals:
                note(f"{len(shapes)} shape(s) within {propose.PROPOSAL_TOLERANCE:.0%} of {format_count(size)} (fewer than --proposals {proposals}: the next is further)")
        note(f"shapes follow {propose.PROPOSAL_FAMILY}; proposals lie within {propose.PROPOSAL_TOLERANCE:.0%} of the target")
    return Rows(rows, detail=Detail(models, bool(targets), dtype.name))
