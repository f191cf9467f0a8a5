"""`llmplan arch`: a model's shape -> exact parameter count, FLOPs per token, KV cache; shape proposals."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from llmplan.cli import options
from llmplan.cli.common import emit, expand, note, output_format, say

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


def _dtype_summary(ck) -> str:
    from llmplan.units import format_bytes

    parts = [f"{dtype} {part['params']:,} values in {part['tensors']} tensor{'s' if part['tensors'] > 1 else ''}, "
             f"{format_bytes(part['bytes'], binary=False)}"
             for dtype, part in ck.by_dtype().items()]
    files = f"{len(ck.files)} file" + ("s" if len(ck.files) > 1 else "")
    return f"{files}, " + "; ".join(parts)


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
    from llmplan.commands.arch import arch as compute

    fmt = output_format(fmt)
    preset = sources["preset"]
    sources["preset"] = expand(list(preset), str) if preset else preset  # '-' among the ids reads ids from stdin
    rows = compute(target=expand(target, str) if target else target, proposals=proposals, context=context, seq=seq,
                   kv_dtype=kv_dtype, presets=presets, **sources, **shape_flags, **more_shape_flags)
    say(rows)
    models, proposed = rows.detail.models, rows.detail.proposed
    shown_published = any(m.source == "preset" for m in models)

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
                 f"KV cache per token in {rows.detail.kv_dtype}")
    emit(rows, fmt, title="Model shapes", columns=columns, labels=LABELS, priority=PRIORITY)
