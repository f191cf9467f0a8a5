"""`llmplan arch`: a model's shape -> exact parameter count, FLOPs per token, KV cache; shape proposals."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from llmplan.cli import model_options as mo
from llmplan.cli import options
from llmplan.cli.common import emit, expand, note, output_format
from llmplan.errors import InputError

app = typer.Typer()

SeqOption = options.seq_option("Sequence length for the attention FLOPs (default: the context of pre-training).")
ContextOption = options.context_option("Context length (default 2048; with --target 4096).")

TABLE_COLUMNS = [
    "model", "layers", "d_model", "heads", "kv_heads", "ffn", "params", "published_params", "active_params",
    "flops_per_token_6n", "flops_per_token_matmul", "matmul_vs_6n", "kv_cache_bytes_per_token",
]
TARGET_COLUMNS = [
    "model", "layers", "d_model", "heads", "kv_heads", "ffn", "params", "target_params", "gap_fraction",
    "flops_per_token_6n", "flops_per_token_matmul", "matmul_vs_6n", "kv_cache_bytes_per_token",
]
# Most important first: a narrow terminal leaves out the last ones (render.to_table).
PRIORITY = [
    "model", "params", "active_params", "target_params", "gap_fraction", "layers", "d_model", "heads", "ffn", "kv_heads",
    "published_params", "kv_cache_bytes_per_token", "flops_per_token_6n", "matmul_vs_6n", "flops_per_token_matmul",
]
CHECKPOINT_COLUMNS = ["checkpoint_bytes"]
LABELS = {
    "checkpoint_tensors": "tensors",
    "checkpoint_bytes": "on disk",
    "flops_per_token_6n": "6N FLOPs/tok",
    "flops_per_token_matmul": "matmul FLOPs/tok",
    "matmul_vs_6n": "matmul/6N",
    "kv_cache_bytes_per_token": "KV/token",
    "non_embedding_params": "non-emb params",
    "published_params": "published",
    "active_params": "active",
    "target_params": "target",
    "gap_fraction": "gap",
}


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


def _dtype_summary(ck) -> str:
    from llmplan.units import format_bytes

    parts = [f"{dtype} {part['params']:,} values in {part['tensors']} tensor{'s' if part['tensors'] > 1 else ''}, "
             f"{format_bytes(part['bytes'], binary=False)}"
             for dtype, part in ck.by_dtype().items()]
    files = f"{len(ck.files)} file" + ("s" if len(ck.files) > 1 else "")
    return f"{files}, " + "; ".join(parts)


def shape_params(shape) -> int:
    from llmplan.model import arch

    return arch.params(shape)


def _whole(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def _int_option(value: Optional[int], name: str) -> None:
    if value is not None and value <= 0:
        raise InputError(f"{name} must be a positive whole number, not {value}")


@app.command(help="""A model's shape -> exact parameter count, FLOPs per token and KV cache; or shapes for a target size.

Give a preset, a Hugging Face config.json, a safetensors checkpoint (its headers only: the exact
stored count by dtype, for any architecture), the shape as flags, or --target. The config.json
model_types read: bert, bloom, deepseek_v2, deepseek_v3, distilbert, falcon (and RefinedWeb,
RefinedWebModel), gemma, gemma2, gemma3, gemma3_text, gpt2, gpt_neox, gptj, llama, mistral, mixtral,
olmo, olmo2, opt, phi, phi3, qwen2, qwen3, qwen3_moe, roberta, starcoder2, t5. FLOPs per training
token are shown as 6N and as counted from the matrix multiplies (forward + backward, attention
scores over the full seq x seq matrix; json/csv also carry the causal-halved count), with the
ratio. Proposals for --target follow today's decoders: heads of 128 (64 up to 2560 wide) in
multiples of 8, so tensor parallelism splits them; 8 KV heads from 1B parameters (--kv-heads
overrides); Llama 3's SwiGLU width; depth from width as in GPT-3, Llama 3.2, LLaMA and Llama 3.1
405B, in multiples of 8 (4 when shallow) so pipeline stages split it. --vocab and --context also
set the proposals' vocabulary (default 32000) and context (default 4096).

Examples:

  llmplan arch --preset llama-2-7b

  llmplan arch --preset gpt-3-175b --preset bloom-176b --preset deepseek-v3

  llmplan arch --layers 32 --d-model 4096 --heads 32 --vocab 32000

  llmplan arch --hf-config path/to/config.json -f json

  llmplan arch --safetensors path/to/checkpoint/

  llmplan arch --target 7B --target 70B
""")
@options.grouped(sources=options.MODEL_SOURCES, shape_flags=options.FULL_SHAPE_HEAD, more_shape_flags=options.FULL_SHAPE_TAIL)
def arch_command(
    sources: options.Flags = None,
    target: Annotated[Optional[list[str]], typer.Option("--target", "-t", help="Propose shapes near this size, e.g. 7B (repeatable; '-' reads stdin).", show_default=False)] = None,
    proposals: Annotated[int, typer.Option("--proposals", "-n", help="Shapes proposed per --target (1 to 20).", min=1, max=20)] = 3,
    shape_flags: options.Flags = None,
    context: ContextOption = None,
    more_shape_flags: options.Flags = None,
    seq: SeqOption = None,
    kv_dtype: Annotated[str, typer.Option("--kv-dtype", help="Number format of the KV cache (see llmplan dtypes).")] = "bf16",
    fmt: options.FormatOption = None,
    presets: options.PresetsOption = None,
) -> None:
    from llmplan.model import propose
    from llmplan.dtypes import get as get_dtype
    from llmplan.units import parse_count

    fmt = output_format(fmt)
    dtype = get_dtype(kv_dtype)
    for value, name in ((seq, "--seq"), (proposals, "--proposals"), (context, "--context")):
        _int_option(value, name)
    target_kv = None
    if target and shape_flags.get("kv_heads") is not None and all(shape_flags.get(k) is None for k in ("layers", "d_model", "heads")):
        target_kv = shape_flags["kv_heads"]  # --target 70B --kv-heads 8: the proposals' KV heads
        shape_flags["kv_heads"] = None
    models = mo.resolve_models(**sources, presets=presets, context=context, need_shape=True, **shape_flags, **more_shape_flags)
    if not (models or target):
        raise InputError("give --preset ID, --hf-config PATH, --safetensors PATH, --target SIZE or the shape as flags (--layers --d-model --heads --vocab); see 'llmplan arch --help'")

    rows: list[dict] = []
    shown_published = any(m.source == "preset" for m in models)
    for model in models:
        for line in model.notes:
            note(line)
        rows.append(model_row(model, seq, dtype.bytes, dtype.name))
    proposed = False
    if target:
        for size in expand(target, lambda text: parse_count(text, "a parameter count")):
            from llmplan.units import format_count

            shapes = propose.propose(size, proposals, vocab=shape_flags.vocab or 32000, context=context or 4096, kv_heads=target_kv)
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
        proposed = True
        note(f"shapes follow {propose.PROPOSAL_FAMILY}; proposals lie within {propose.PROPOSAL_TOLERANCE:.0%} of the target")

    columns = list(TABLE_COLUMNS)
    if any(m.checkpoint is not None for m in models):
        columns += [c for c in CHECKPOINT_COLUMNS if c not in columns]
    if proposed and not models:
        columns = list(TARGET_COLUMNS)
    elif proposed:
        columns += ["target_params", "gap_fraction"]
    if not shown_published and "published_params" in columns:
        columns.remove("published_params")
    if not any(r.get("experts") for r in rows) and "active_params" in columns:
        columns.remove("active_params")
    if fmt == "table":
        seqs = sorted({r["seq"] for r in rows if r.get("seq")})
        for model in models:
            if model.checkpoint is not None:
                note(f"{model.name}: " + _dtype_summary(model.checkpoint))
        if seqs:
            note("FLOPs per training token (forward + backward); matmul counts attention scores over the full "
                 f"seq x seq matrix at seq {', '.join(str(s) for s in seqs)} (json/csv add the causal-halved count); "
                 f"KV cache per token in {dtype.name}")
    emit(rows, fmt, title="Model shapes", columns=columns, labels=LABELS, priority=PRIORITY)
