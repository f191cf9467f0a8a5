"""A transformer's shape, and what follows from it: exact parameter counts, FLOPs per token, KV cache.

(Being built: the counting functions land with the `llmplan arch` issue. The field names of Shape
are fixed: llmplan.memory reads them.)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Shape:
    """A transformer's hyperparameters. Decoder defaults are LLaMA-style."""

    d_model: int
    heads: int
    vocab: int
    family: str = "decoder"  # decoder | encoder | encoder-decoder
    layers: int = 0  # decoder-only and encoder-only models
    encoder_layers: int = 0  # encoder-decoder models
    decoder_layers: int = 0
    kv_heads: int | None = None  # None: same as heads (multi-head attention)
    head_dim: int | None = None  # None: d_model // heads
    ffn: int | None = None  # None: 4 * d_model (gelu) or LLaMA's rounded 8/3 * d_model (swiglu)
    mlp: str = "swiglu"  # swiglu | geglu (gated, three matrices) | gelu | relu (two matrices)
    context: int = 2048
    tied_embeddings: bool = False
    positions: str = "rotary"  # learned | rotary | relative | alibi
    norm: str = "rmsnorm"  # rmsnorm | layernorm
    bias: bool = False
    experts: int = 0  # routed experts (0: dense)
    experts_per_token: int = 0
    shared_experts: int = 0
    moe_ffn: int | None = None  # width of one expert's FFN
    dense_layers: int = 0  # the first k layers stay dense (DeepSeek-V3: 3)
    # Multi-head latent attention (DeepSeek-V2/V3); all None for ordinary attention.
    q_lora_rank: int | None = None
    kv_lora_rank: int | None = None
    qk_rope_head_dim: int | None = None
    qk_nope_head_dim: int | None = None
    v_head_dim: int | None = None
