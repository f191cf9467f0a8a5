"""`llmplan arch`: a model's shape -> exact parameter count, FLOPs per token, KV cache; shape proposals."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from llmplan.cli.common import FormatOption, PresetsOption, catalog, emit, expand, note, output_format
from llmplan.errors import InputError

app = typer.Typer()

TABLE_COLUMNS = [
    "model", "layers", "d_model", "heads", "kv_heads", "ffn", "params", "published_params", "active_params",
    "flops_per_token_6n", "flops_per_token_matmul", "matmul_vs_6n", "kv_cache_per_token_bytes",
]
TARGET_COLUMNS = [
    "model", "layers", "d_model", "heads", "ffn", "params", "target_params", "gap_fraction",
    "flops_per_token_6n", "flops_per_token_matmul", "matmul_vs_6n", "kv_cache_per_token_bytes",
]
LABELS = {
    "flops_per_token_6n": "6N FLOPs/tok",
    "flops_per_token_matmul": "matmul FLOPs/tok",
    "matmul_vs_6n": "matmul/6N",
    "kv_cache_per_token_bytes": "KV/token",
    "non_embedding_params": "non-emb params",
    "published_params": "published",
    "active_params": "active",
    "target_params": "target",
    "gap_fraction": "gap",
}


def shape_row(shape, seq: int | None, kv_bytes: float, kv_dtype: str) -> dict:
    """One flat row for a shape, base units (counts, FLOPs, bytes)."""
    from llmplan import arch

    flops = arch.flops_per_token(shape, seq)
    return {
        "model": shape.name or "custom",
        "family": shape.family,
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
        "kv_cache_per_token_bytes": arch.kv_cache_bytes_per_token(shape, kv_bytes),
    }


def _whole(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def _int_option(value: Optional[int], name: str) -> None:
    if value is not None and value <= 0:
        raise InputError(f"{name} must be a positive whole number, not {value}")


@app.command(help="""A model's shape -> exact parameter count, FLOPs per token and KV cache; or shapes for a target size.

Give a preset, a Hugging Face config.json, the shape as flags, or --target. FLOPs per training
token are shown as 6N and as counted from the matrix multiplies (forward + backward, attention
scores over the full seq x seq matrix; json/csv also carry the causal-halved count), with the
ratio. Proposals for --target follow the LLaMA family's width-to-depth ratios (LLaMA Table 2,
Llama 3.1 405B for widths above 8192): head dim 128, FFN 8/3*d rounded up to 256; --vocab and
--context also set the proposals' vocabulary (default 32000) and context (default 4096).

Examples:

  llmplan arch --preset llama-2-7b

  llmplan arch --preset gpt-3-175b --preset bloom-176b --preset deepseek-v3

  llmplan arch --layers 32 --d-model 4096 --heads 32 --vocab 32000

  llmplan arch --hf-config path/to/config.json -f json

  llmplan arch --target 7B --target 13B
""")
def arch_command(
    preset: Annotated[Optional[list[str]], typer.Option("--preset", "-p", help="A models preset id or alias (repeatable; '-' reads ids from stdin).", show_default=False)] = None,
    hf_config: Annotated[Optional[list[Path]], typer.Option("--hf-config", help="A local Hugging Face config.json (or its folder): llama, mistral, mixtral, qwen2, gemma, gpt2, gpt_neox, falcon, bloom, bert, roberta, t5, deepseek_v3. Repeatable.", show_default=False)] = None,
    target: Annotated[Optional[list[str]], typer.Option("--target", "-t", help="Propose shapes near this size, e.g. 7B (repeatable; '-' reads stdin).", show_default=False)] = None,
    proposals: Annotated[int, typer.Option("--proposals", "-n", help="Shapes proposed per --target (1 to 20).", min=1, max=20)] = 3,
    family: Annotated[str, typer.Option("--type", help="decoder, encoder or encoder-decoder (shape flags).")] = "decoder",
    layers: Annotated[Optional[int], typer.Option("--layers", help="Layers (decoder or encoder).", show_default=False)] = None,
    encoder_layers: Annotated[Optional[int], typer.Option("--encoder-layers", help="Encoder layers (encoder-decoder).", show_default=False)] = None,
    decoder_layers: Annotated[Optional[int], typer.Option("--decoder-layers", help="Decoder layers (encoder-decoder).", show_default=False)] = None,
    d_model: Annotated[Optional[int], typer.Option("--d-model", help="Model width.", show_default=False)] = None,
    heads: Annotated[Optional[int], typer.Option("--heads", help="Attention heads.", show_default=False)] = None,
    kv_heads: Annotated[Optional[int], typer.Option("--kv-heads", help="Key/value heads (GQA; 1 = MQA). Default: --heads.", show_default=False)] = None,
    head_dim: Annotated[Optional[int], typer.Option("--head-dim", help="Width of one head. Default: d-model / heads.", show_default=False)] = None,
    ffn: Annotated[Optional[int], typer.Option("--ffn", help="FFN width. Default: 4*d (gelu, relu) or LLaMA's 8/3*d rounded up to 256 (swiglu, geglu).", show_default=False)] = None,
    mlp: Annotated[str, typer.Option("--mlp", help="swiglu, geglu (gated, 3 matrices), gelu or relu (2 matrices).")] = "swiglu",
    vocab: Annotated[Optional[int], typer.Option("--vocab", help="Vocabulary (embedding rows).", show_default=False)] = None,
    context: Annotated[Optional[int], typer.Option("--context", help="Context length (default 2048; with --target 4096).", show_default=False)] = None,
    tied: Annotated[bool, typer.Option("--tied-embeddings/--untied-embeddings", help="Share the input embedding with the output head.")] = False,
    positions: Annotated[str, typer.Option("--positions", help="rotary, learned, relative or alibi.")] = "rotary",
    norm: Annotated[str, typer.Option("--norm", help="rmsnorm or layernorm.")] = "rmsnorm",
    bias: Annotated[bool, typer.Option("--bias/--no-bias", help="Biases on the linear layers.")] = False,
    experts: Annotated[int, typer.Option("--experts", help="Routed experts per MoE layer (0: dense).")] = 0,
    experts_per_token: Annotated[int, typer.Option("--experts-per-token", help="Routed experts each token uses.")] = 0,
    shared_experts: Annotated[int, typer.Option("--shared-experts", help="Always-used experts per MoE layer.")] = 0,
    moe_ffn: Annotated[Optional[int], typer.Option("--moe-ffn", help="FFN width of one expert (default: --ffn).", show_default=False)] = None,
    dense_layers: Annotated[int, typer.Option("--dense-layers", help="The first k layers stay dense (MoE).")] = 0,
    seq: Annotated[Optional[int], typer.Option("--seq", help="Sequence length for the attention FLOPs (default: the context).", show_default=False)] = None,
    kv_dtype: Annotated[str, typer.Option("--kv-dtype", help="Number format of the KV cache (see llmplan dtypes).")] = "bf16",
    fmt: FormatOption = None,
    presets: PresetsOption = None,
) -> None:
    from llmplan import arch
    from llmplan.dtypes import get as get_dtype
    from llmplan.units import parse_count

    fmt = output_format(fmt)
    dtype = get_dtype(kv_dtype)
    for value, name in ((seq, "--seq"), (proposals, "--proposals"), (context, "--context")):
        _int_option(value, name)
    flag_values = (layers, encoder_layers, decoder_layers, d_model, heads, kv_heads, head_dim, ffn, vocab)
    flags_given = any(v is not None for v in flag_values) or experts or experts_per_token
    if not (preset or hf_config or target or flags_given):
        raise InputError("give --preset ID, --hf-config PATH, --target SIZE or the shape as flags (--layers --d-model --heads --vocab); see 'llmplan arch --help'")

    rows: list[dict] = []
    shown_published = False
    if preset:
        cat = catalog(presets)
        for pid in expand(preset, str):
            p = cat.get("models", pid)
            shape = arch.Shape.from_preset(p)
            row = shape_row(shape, seq, dtype.bytes, dtype.name)
            # The headline figure (7B, 70B) and, where the reference has one, the exact published count.
            row["published_params"] = p.get("params")
            row["published_exact_params"] = p.get("params_exact")
            published = p.get("params_exact") or p.get("params")
            row["derived_vs_published"] = row["params"] / published if published else None
            row["published_active_params"] = p.get("active_params")
            rows.append(row)
            shown_published = True
    for path in hf_config or ():
        from llmplan.hfconfig import shape_from_hf_config

        rows.append(shape_row(shape_from_hf_config(path), seq, dtype.bytes, dtype.name))
    if flags_given:
        missing = [f for f, v in (("--d-model", d_model), ("--heads", heads), ("--vocab", vocab)) if v is None]
        if missing:
            raise InputError(f"a shape given as flags also needs {', '.join(missing)}")
        kind = family.strip().lower()
        if kind == "encoder-decoder" and layers and not (encoder_layers or decoder_layers):
            encoder_layers = decoder_layers = layers  # T5's num_layers: each stack
        arch.check_flag_heads(d_model, heads, head_dim)
        shape = arch.Shape(
            family=kind, layers=layers or 0, encoder_layers=encoder_layers or 0,
            decoder_layers=decoder_layers or 0, d_model=d_model, heads=heads, kv_heads=kv_heads, head_dim=head_dim,
            ffn=ffn, mlp=mlp.strip().lower(), vocab=vocab, context=context or 2048, tied_embeddings=tied,
            positions=positions.strip().lower(), norm=norm.strip().lower(), bias=bias, experts=experts,
            experts_per_token=experts_per_token, shared_experts=shared_experts, moe_ffn=moe_ffn,
            dense_layers=dense_layers, name="custom",
        )
        rows.append(shape_row(shape, seq, dtype.bytes, dtype.name))
    proposed = False
    if target:
        for size in expand(target, lambda text: parse_count(text, "a parameter count")):
            from llmplan.units import format_count

            shapes = arch.propose(size, proposals, vocab=vocab or 32000, context=context or 4096)
            for shape in shapes:
                row = shape_row(shape, seq, dtype.bytes, dtype.name)
                row["target_params"] = size
                row["gap_params"] = row["params"] - size
                row["gap_fraction"] = row["gap_params"] / size
                rows.append(row)
            gap = abs(rows[-1]["gap_fraction"])
            if gap > arch.PROPOSAL_TOLERANCE:
                note(f"no shape of the family lies within {arch.PROPOSAL_TOLERANCE:.0%} of {format_count(size)}: widths step by 256 and depth follows width, so the nearest is {gap:.1%} off")
            elif len(shapes) < proposals:
                note(f"{len(shapes)} shape(s) within {arch.PROPOSAL_TOLERANCE:.0%} of {format_count(size)} (fewer than --proposals {proposals}: the next is further)")
        proposed = True
        note(f"shapes follow {arch.PROPOSAL_FAMILY}; proposals lie within {arch.PROPOSAL_TOLERANCE:.0%} of the target")

    columns = list(TABLE_COLUMNS)
    if proposed and not (preset or hf_config or flags_given):
        columns = list(TARGET_COLUMNS)
    elif proposed:
        columns += ["target_params", "gap_fraction"]
    if not shown_published and "published_params" in columns:
        columns.remove("published_params")
    if not any(r.get("experts") for r in rows) and "active_params" in columns:
        columns.remove("active_params")
    if fmt == "table":
        seqs = sorted({r["seq"] for r in rows})
        note("FLOPs per training token (forward + backward); matmul counts attention scores over the full "
             f"seq x seq matrix at seq {', '.join(str(s) for s in seqs)} (json/csv add the causal-halved count); "
             f"KV cache per token in {dtype.name}")
    emit(rows, fmt, title="Model shapes", columns=columns, labels=LABELS)
