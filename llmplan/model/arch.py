"""A transformer's shape, and what follows from it: exact parameter counts, FLOPs per token, KV cache.

Counts follow the published implementations, term by term (one small function per term):

- decoder-only (GPT-2/3, LLaMA, BLOOM, Falcon, Pythia, DeepSeek-V3), encoder-only (BERT, RoBERTa)
  and encoder-decoder (T5) stacks;
- attention with grouped or multi-query KV heads (Ainslie et al. 2023; Shazeer 2019), a head width
  that need not be d_model/heads (PaLM, T5), or DeepSeek's multi-head latent attention (MLA,
  DeepSeek-V2 §2.1, DeepSeek-V3 §2.1);
- plain (gelu/relu, two matrices) or gated (swiglu/geglu, three matrices; Shazeer 2020) MLPs;
- mixture-of-experts layers with shared experts and first-k dense layers (DeepSeekMoE; DeepSeek-V3 §4.2).

Conventions: a parameter is a trainable tensor entry; buffers (rotary inv_freq, causal masks) are
not parameters. "Embedding" parameters are the token embedding, an untied output head, learned
position rows, BERT's token-type rows and T5's relative-position biases (Kaplan et al. 2020 §2.1
exclude embedding and position parameters from N); everything else is non-embedding.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from llmplan.errors import InputError
from llmplan.records import record

FAMILIES = ("decoder", "encoder", "encoder-decoder")
MLPS = ("swiglu", "geglu", "gelu", "relu")
GATED = ("swiglu", "geglu")
POSITIONS = ("learned", "rotary", "relative", "alibi")
NORMS = ("rmsnorm", "layernorm")
QK_NORMS = (None, "head", "full")


@record
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
    train_context: int | None = None  # sequence length of pre-training; None: context (Llama 3.1: 8192, then 131072)
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
    # Added by the arch issue (all defaulted; None means "the family's usual choice"):
    qkv_bias: bool | None = None  # None: same as `bias` (Qwen2: biases on q, k, v only)
    norm_bias: bool | None = None  # None: LayerNorm has a bias, RMSNorm has none (MPT: LayerNorm without bias)
    layer_norms: int | None = None  # norms per layer; None: 2 (Falcon-7B's parallel block has 1)
    embedding_norm: bool | None = None  # a norm after the embedding; None: True for BERT-style encoders
    final_norm: bool | None = None  # a norm after the last layer; None: True, except post-LN encoders
    token_types: int | None = None  # BERT segment embeddings; None: 2 for encoders, else 0
    pooler: bool | None = None  # BERT's pooler (dense d x d + bias); None: True for encoders
    position_rows: int | None = None  # learned position rows; None: context (RoBERTa stores 514)
    attn_out_bias: bool | None = None  # None: same as `bias` (Llama's attention_bias: q, k, v and o)
    mlp_bias: bool | None = None  # None: same as `bias` (Llama's mlp_bias: gate, up, down)
    head_bias: bool = False  # a bias on the output head (Phi-2, GPT-J: lm_head bias=True)
    qk_norm: str | None = None  # "head": a norm of head_dim on q and k (Qwen3, Gemma 3); "full": over all heads (OLMo 2)
    norm_weights: bool = True  # False: LayerNorms without gain or bias (OLMo: elementwise_affine=False)
    router_bias: bool = False  # a per-expert bias on the router (DeepSeek-V3: e_score_correction_bias)
    relative_buckets: int = 32  # T5's relative-attention buckets, one bias per bucket and head (Raffel et al. §2.1)
    name: str = ""  # a label for output only

    # ----- resolved values -------------------------------------------------------------------
    @property
    def n_kv_heads(self) -> int:
        return self.heads if self.kv_heads is None else self.kv_heads

    @property
    def trained_context(self) -> int:
        return self.context if self.train_context is None else self.train_context

    @property
    def d_head(self) -> int:
        return self.head_dim if self.head_dim is not None else self.d_model // self.heads

    @property
    def attn_width(self) -> int:
        """heads x head_dim; d_model when no head_dim is given (GPT-3 XL: 24 heads share 2048)."""
        return self.heads * self.head_dim if self.head_dim is not None else self.d_model

    @property
    def kv_width(self) -> int:
        return self.n_kv_heads * self.head_dim if self.head_dim is not None else self.d_model * self.n_kv_heads // self.heads

    @property
    def d_ffn(self) -> int:
        if self.ffn is not None:
            return self.ffn
        return llama_ffn(self.d_model) if self.mlp in GATED else 4 * self.d_model

    @property
    def d_expert(self) -> int:
        return self.moe_ffn if self.moe_ffn is not None else self.d_ffn

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank is not None

    @property
    def is_moe(self) -> bool:
        return self.experts > 0

    @property
    def total_layers(self) -> int:
        return self.layers if self.family != "encoder-decoder" else self.encoder_layers + self.decoder_layers

    def _or(self, value, default):
        return default if value is None else value

    @property
    def has_qkv_bias(self) -> bool:
        return self._or(self.qkv_bias, self.bias)

    @property
    def has_attn_out_bias(self) -> bool:
        return self._or(self.attn_out_bias, self.bias)

    @property
    def has_mlp_bias(self) -> bool:
        return self._or(self.mlp_bias, self.bias)

    @property
    def has_norm_bias(self) -> bool:
        return self._or(self.norm_bias, self.norm == "layernorm")

    @property
    def n_layer_norms(self) -> int:
        return self._or(self.layer_norms, 2)

    @property
    def has_embedding_norm(self) -> bool:
        return self._or(self.embedding_norm, self.family == "encoder")

    @property
    def has_final_norm(self) -> bool:
        return self._or(self.final_norm, self.family != "encoder")

    @property
    def n_token_types(self) -> int:
        return self._or(self.token_types, 2 if self.family == "encoder" else 0)

    @property
    def has_pooler(self) -> bool:
        return self._or(self.pooler, self.family == "encoder")

    @property
    def n_position_rows(self) -> int:
        if self.positions != "learned":
            return 0
        return self._or(self.position_rows, self.context)

    # ----- construction ----------------------------------------------------------------------
    def __post_init__(self) -> None:
        check(self)

    @classmethod
    def from_preset(cls, preset: Any) -> "Shape":
        """The shape of a models preset; InputError naming the model when it has none."""
        data = preset.data if hasattr(preset, "data") else dict(preset)
        pid = getattr(preset, "id", data.get("name", "?"))
        family = data.get("architecture", "decoder")
        # mlp is required too: without the MLP kind the count is a guess (Chinchilla, Gopher).
        missing = [k for k in ("d_model", "heads", "vocab", "mlp") if k not in data]
        if family == "encoder-decoder":
            missing += [k for k in ("encoder_layers", "decoder_layers") if k not in data]
        elif "layers" not in data:
            missing.append("layers")
        if missing:
            raise InputError(
                f"model preset {pid!r} has no published shape (missing {', '.join(missing)}); "
                "give the shape as flags (--layers --d-model --heads --vocab ...) instead"
            )
        fields = {k: data[k] for k in SHAPE_FIELDS if k in data}
        fields["family"] = family
        fields.setdefault("name", pid)
        try:
            return cls(**fields)
        except InputError as error:
            raise InputError(f"model preset {pid!r}: {error}") from None


SHAPE_FIELDS = (
    "layers", "encoder_layers", "decoder_layers", "d_model", "heads", "kv_heads", "head_dim", "ffn",
    "mlp", "vocab", "context", "train_context", "tied_embeddings", "positions", "norm", "bias", "experts",
    "experts_per_token", "shared_experts", "moe_ffn", "dense_layers", "q_lora_rank", "kv_lora_rank",
    "qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim", "qkv_bias", "norm_bias", "layer_norms",
    "embedding_norm", "final_norm", "token_types", "pooler", "position_rows", "attn_out_bias", "mlp_bias",
    "head_bias", "qk_norm", "norm_weights", "router_bias",
)


def check(s: Shape) -> None:
    """Raise InputError (one line, saying how to fix it) for a shape that cannot exist."""
    if s.family not in FAMILIES:
        raise InputError(f"model type {s.family!r} is not one of {', '.join(FAMILIES)}")
    if s.mlp not in MLPS:
        raise InputError(f"MLP kind {s.mlp!r} is not one of {', '.join(MLPS)}")
    if s.positions not in POSITIONS:
        raise InputError(f"positions {s.positions!r} is not one of {', '.join(POSITIONS)}")
    if s.qk_norm not in QK_NORMS:
        raise InputError(f"qk-norm {s.qk_norm!r} is not one of head, full (or none)")
    if s.norm not in NORMS:
        raise InputError(f"norm {s.norm!r} is not one of {', '.join(NORMS)}")
    for name in ("d_model", "heads", "vocab", "context"):
        value = getattr(s, name)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise InputError(f"{name.replace('_', '-')} must be a positive whole number, not {value!r}")
    if s.family == "encoder-decoder":
        if s.encoder_layers <= 0 or s.decoder_layers <= 0:
            raise InputError("an encoder-decoder needs --encoder-layers and --decoder-layers (positive)")
    elif s.layers <= 0:
        raise InputError(f"a {s.family} model needs --layers (a positive whole number)")
    for name in ("kv_heads", "head_dim", "ffn", "moe_ffn", "train_context", "q_lora_rank", "kv_lora_rank", "qk_rope_head_dim",
                 "qk_nope_head_dim", "v_head_dim", "position_rows", "layer_norms"):
        value = getattr(s, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
            raise InputError(f"{name.replace('_', '-')} must be a positive whole number, not {value!r}")
    if s.head_dim is None and not s.is_mla and s.d_model % s.heads and s.n_kv_heads != s.heads:
        raise InputError(f"d-model {s.d_model} is not divisible by {s.heads} heads; give --head-dim")
    if not s.is_mla and s.heads % s.n_kv_heads:
        raise InputError(f"{s.heads} heads cannot be split into {s.n_kv_heads} KV groups; kv-heads must divide heads")
    if s.is_mla and (s.qk_rope_head_dim is None or s.qk_nope_head_dim is None or s.v_head_dim is None):
        raise InputError("MLA (kv_lora_rank) also needs qk_rope_head_dim, qk_nope_head_dim and v_head_dim")
    if s.experts < 0 or s.experts_per_token < 0 or s.shared_experts < 0 or s.dense_layers < 0:
        raise InputError("experts, experts per token, shared experts and dense layers cannot be negative")
    if s.is_moe:
        if not 0 < s.experts_per_token <= s.experts:
            raise InputError(f"experts per token must be between 1 and {s.experts} (the routed experts)")
        if s.family != "decoder":
            raise InputError("mixture-of-experts is modelled for decoder-only models")
        if s.dense_layers > s.layers:
            raise InputError(f"dense layers ({s.dense_layers}) cannot exceed layers ({s.layers})")
    elif s.experts_per_token:
        raise InputError("experts per token needs --experts (the number of routed experts)")


def llama_ffn(d_model: int, multiple_of: int = 256) -> int:
    # LLaMA (Touvron et al. 2023 §2.2): SwiGLU width 2/3·4d, rounded up to a multiple of 256 (released model.py).
    hidden = int(2 * 4 * d_model / 3)
    return multiple_of * ((hidden + multiple_of - 1) // multiple_of)


# ----- parameter counts, one term each ------------------------------------------------------------

def norm_params(s: Shape, width: int | None = None) -> int:
    # LayerNorm (Ba et al. 2016): gain + bias per feature; RMSNorm (Zhang & Sennrich 2019): gain only;
    # OLMo's non-parametric LayerNorm (Groeneveld et al. 2024 §2.1): none.
    if not s.norm_weights:
        return 0
    return (width or s.d_model) * (2 if s.has_norm_bias else 1)


def qk_norm_params(s: Shape) -> int:
    # Norms on queries and keys: per head, shared by the heads (Qwen3, Gemma 3: RMSNorm(head_dim));
    # or over the whole projection (OLMo 2: RMSNorm(heads·head_dim) and RMSNorm(kv_heads·head_dim)).
    if s.qk_norm == "head":
        return 2 * norm_params(s, s.d_head)
    if s.qk_norm == "full":
        return norm_params(s, s.attn_width) + norm_params(s, s.kv_width)
    return 0


def attention_params(s: Shape) -> int:
    """One attention block: projections (and their biases)."""
    d = s.d_model
    if s.is_mla:
        # MLA (DeepSeek-V2 §2.1.2, V3 §2.1.1): low-rank query and joint KV compression, decoupled RoPE key.
        qk = s.qk_nope_head_dim + s.qk_rope_head_dim
        if s.q_lora_rank:
            q = d * s.q_lora_rank + s.q_lora_rank + s.q_lora_rank * s.heads * qk  # W_DQ, its RMSNorm, W_UQ (+W_QR)
        else:
            q = d * s.heads * qk
        kv = d * (s.kv_lora_rank + s.qk_rope_head_dim) + s.kv_lora_rank  # W_DKV and W_KR, RMSNorm on c_KV
        kv += s.kv_lora_rank * s.heads * (s.qk_nope_head_dim + s.v_head_dim)  # W_UK, W_UV
        out = s.heads * s.v_head_dim * d  # W_O
        return q + kv + out
    # Vaswani et al. 2017 §3.2.2, with n_kv key/value heads (GQA, Ainslie et al. 2023; MQA, Shazeer 2019).
    a, akv = s.attn_width, s.kv_width
    weights = d * a + 2 * d * akv + a * d
    biases = (a + 2 * akv if s.has_qkv_bias else 0) + (d if s.has_attn_out_bias else 0)
    return weights + biases + qk_norm_params(s)


def mlp_params(s: Shape, width: int) -> int:
    # Position-wise FFN (Vaswani et al. 2017 Eq. 2): two matrices; gated GLU variants three (Shazeer 2020).
    d = s.d_model
    if s.mlp in GATED:
        return 3 * d * width + ((2 * width + d) if s.has_mlp_bias else 0)
    return 2 * d * width + ((width + d) if s.has_mlp_bias else 0)


def router_params(s: Shape) -> int:
    # MoE gate: one d-vector per routed expert (DeepSeek-V3 §2.1.2 centroids e_i; Mixtral's gate), and
    # DeepSeek-V3's bias b_i for auxiliary-loss-free balancing (§2.1.2, Eq. 16; e_score_correction_bias).
    return s.experts * s.d_model + (s.experts if s.router_bias else 0)


def moe_params(s: Shape, active: bool = False) -> int:
    """One MoE layer's FFN: shared + routed experts (or only the ones a token uses) + router."""
    routed = s.experts_per_token if active else s.experts
    return (s.shared_experts + routed) * mlp_params(s, s.d_expert) + router_params(s)


def layer_params(s: Shape, index: int = 0, cross_attention: bool = False, active: bool = False) -> int:
    """One layer: attention (+ cross-attention), FFN or MoE, norms."""
    attn = attention_params(s) * (2 if cross_attention else 1)
    if s.is_moe and index >= s.dense_layers:
        ffn = moe_params(s, active)
    else:
        ffn = mlp_params(s, s.d_ffn)
    norms = (s.n_layer_norms + (1 if cross_attention else 0)) * norm_params(s)
    return attn + ffn + norms


def _stack_params(s: Shape, active: bool = False) -> int:
    if s.family == "encoder-decoder":
        enc = s.encoder_layers * layer_params(s)
        dec = s.decoder_layers * layer_params(s, cross_attention=True)
        return enc + dec + (2 * norm_params(s) if s.has_final_norm else 0)
    if s.is_moe:
        dense = s.dense_layers * layer_params(s, 0)
        moe = (s.layers - s.dense_layers) * layer_params(s, s.dense_layers, active=active)
        body = dense + moe
    else:
        body = s.layers * layer_params(s)
    return body + (norm_params(s) if s.has_final_norm else 0)


def embedding_params(s: Shape) -> int:
    """Token embedding, untied output head, learned positions, token types, relative-position biases."""
    d = s.d_model
    total = s.vocab * d  # token embedding
    if not s.tied_embeddings:
        total += s.vocab * d  # separate output projection (LLaMA, Pythia, Falcon)
    if s.head_bias:
        total += s.vocab  # a bias on the logits (Phi-2, GPT-J)
    total += (s.n_position_rows + s.n_token_types) * d  # learned positions (GPT-2/3, BERT); BERT segments
    if s.positions == "relative" and s.family == "encoder-decoder":
        # T5 (Raffel et al. §2.1): one scalar per bucket and head, shared by the layers of each stack.
        total += 2 * s.relative_buckets * s.heads
    return total


def non_embedding_params(s: Shape) -> int:
    """Everything but embedding_params: layers, norms, BERT's embedding norm and pooler."""
    extra = norm_params(s) if s.has_embedding_norm else 0  # BLOOM, BERT: LayerNorm on the embeddings
    if s.has_pooler:
        extra += s.d_model * s.d_model + s.d_model  # BERT pooler: dense + tanh on [CLS] (Devlin et al. §3)
    return _stack_params(s) + extra


def params(s: Shape) -> int:
    """Exact total parameter count."""
    return embedding_params(s) + non_embedding_params(s)


def active_params(s: Shape) -> int:
    """Parameters a token uses: routed experts counted only for the experts_per_token chosen (MoE)."""
    if not s.is_moe:
        return params(s)
    return params(s) - _stack_params(s) + _stack_params(s, active=True)


def components(s: Shape) -> dict[str, int]:
    """The count split into parts (for display); the parts sum to params(s)."""
    parts = {
        "embedding_params": embedding_params(s),
        "attention_params": 0,
        "mlp_params": 0,
        "norm_params": 0,
        "other_params": 0,
    }
    layers = (
        [(i, False) for i in range(s.layers)]
        if s.family != "encoder-decoder"
        else [(0, False)] * s.encoder_layers + [(0, True)] * s.decoder_layers
    )
    for index, cross in layers:
        parts["attention_params"] += attention_params(s) * (2 if cross else 1)
        parts["mlp_params"] += moe_params(s) if s.is_moe and index >= s.dense_layers else mlp_params(s, s.d_ffn)
        parts["norm_params"] += (s.n_layer_norms + (1 if cross else 0)) * norm_params(s)
    stacks = 2 if s.family == "encoder-decoder" else 1
    parts["norm_params"] += (stacks * norm_params(s) if s.has_final_norm else 0)
    parts["norm_params"] += norm_params(s) if s.has_embedding_norm else 0
    parts["other_params"] = params(s) - sum(parts.values())  # pooler
    return parts


# ----- FLOPs per token --------------------------------------------------------------------------

def _matmul_weights(s: Shape, stack: str = "all") -> int:
    """Weights one token multiplies by in a forward pass (active experts only; no embedding lookup)."""
    # MLA's two latent RMSNorm gains sit inside attention_params but are not matrix weights.
    mla_norms = ((s.q_lora_rank or 0) + s.kv_lora_rank) if s.is_mla else qk_norm_params(s)

    def layer(index: int, cross: bool) -> int:
        a = (attention_params(s) - mla_norms) * (2 if cross else 1)
        f = moe_params(s, active=True) if s.is_moe and index >= s.dense_layers else mlp_params(s, s.d_ffn)
        return a + f

    if s.family == "encoder-decoder":
        enc = s.encoder_layers * layer(0, False)
        dec = s.decoder_layers * layer(0, True)
        return {"encoder": enc, "decoder": dec}.get(stack, enc + dec)
    return sum(layer(i, False) for i in range(s.layers)) if s.is_moe else s.layers * layer(0, False)


def attention_score_flops(s: Shape, seq: int, causal: bool = False) -> float:
    # Forward, per token per attention layer: QK^T and A·V, 2·seq·width each (Kaplan Table 1; PaLM App. B).
    qk = s.heads * (s.qk_nope_head_dim + s.qk_rope_head_dim) if s.is_mla else s.attn_width
    v = s.heads * s.v_head_dim if s.is_mla else s.attn_width
    full = 2 * seq * qk + 2 * seq * v
    return full / 2 if causal else full  # causal: a token attends to (seq+1)/2 keys on average; ~seq/2


def flops_per_token(s: Shape, seq: int | None = None) -> dict[str, float]:
    """Training FLOPs per token (forward + backward = 3 x forward, Kaplan §2.1; Hoffmann App. F).

    `six_n`: 6·N with N = active_params (Kaplan 2020; Hoffmann 2022 §3: C ≈ 6ND).
    `matmul`: 3 x (2 x every weight a token multiplies by, the output logits included, the input
    embedding lookup excluded, + attention scores QK^T and A·V over the FULL seq x seq matrix, as
    PaLM App. B's 6N + 12·L·H·Q·T and Hoffmann App. F count them). `matmul_causal` halves the
    attention-score term for a causal mask (Kaplan Table 1's 2·n_layer·n_ctx·d_attn forward).
    Encoder-decoder: per token of source + target (seq each), i.e. half of encoder + decoder per
    token, the convention of GPT-3 Table D.1 for T5 ("3 FLOPs per parameter per token").
    """
    seq = seq or s.trained_context  # the trained sequence, not a later long-context extension
    logits = 2 * s.d_model * s.vocab  # output projection, forward
    if s.family == "encoder-decoder":
        enc_attn = s.encoder_layers * attention_score_flops(s, seq)
        # decoder: self-attention (causal or not, per flag) and cross-attention over the seq source tokens
        dec_self = s.decoder_layers * attention_score_flops(s, seq)
        dec_cross = s.decoder_layers * attention_score_flops(s, seq)
        weights = 2 * _matmul_weights(s)
        fwd_full = (weights + logits + enc_attn + dec_self + dec_cross) / 2
        fwd_causal = (weights + logits + enc_attn + dec_self / 2 + dec_cross) / 2
    else:
        weights = 2 * _matmul_weights(s)
        attn = s.layers * attention_score_flops(s, seq)
        fwd_full = weights + logits + attn
        fwd_causal = weights + logits + (attn if s.family == "encoder" else attn / 2)
    six_n = 6 * active_params(s)
    matmul = _whole(3 * fwd_full)
    return {
        "seq": seq,
        "six_n": six_n,
        "matmul": matmul,
        "matmul_causal": _whole(3 * fwd_causal),
        "ratio": matmul / six_n,
    }


def _whole(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def hoffmann_flops_per_token(s: Shape, seq: int | None = None, embeddings: bool = True) -> float:
    """Training FLOPs per token counted as Hoffmann et al. 2022 Appendix F (decoder-only, full attention).

    Forward per sequence: embeddings 2·s·V·d; per layer KQV 2·3·s·d·(kv_size·heads), logits
    2·s·s·(kv_size·heads), softmax 3·heads·s·s, reduction 2·s·s·(kv_size·heads), projection
    2·s·(kv_size·heads)·d, dense 2·s·(d·ffw + d·ffw); final logits 2·s·d·V; backward = 2 x forward.
    `embeddings=False` drops the embedding and final-logit terms: only then are the Table A4
    ratios reproduced (nanoGPT scaling_laws.ipynb, "per author correspondence").
    Extended here (not in App. F) to GQA (K, V of n_kv heads) and gated MLPs (three matrices).
    """
    seq = seq or s.trained_context  # the trained sequence, not a later long-context extension
    d, h = s.d_model, s.heads
    a, akv = s.attn_width, s.kv_width
    attention = 2 * seq * d * (a + 2 * akv) + 2 * seq * seq * a + 3 * h * seq * seq + 2 * seq * seq * a + 2 * seq * a * d
    dense = 2 * seq * (3 if s.mlp in GATED else 2) * d * s.d_ffn
    forward = s.layers * (attention + dense)
    if embeddings:
        forward += 2 * seq * s.vocab * d + 2 * seq * d * s.vocab
    return 3 * forward / seq


# Training FLOPs per parameter per token: 6 (forward 2 + backward 4; Kaplan et al. 2020 §2.1), 8 with full
# activation recomputation (one more forward pass). Keyed by recompute mode.
FLOPS_PER_PARAM_PER_TOKEN = {"none": 6.0, "full": 8.0}


def training_flops_per_token(N: float, layers: int | None = None, d_model: int | None = None, context: int | None = None, recompute: str = "none") -> float:
    """From a parameter count (no shape): 6N (Kaplan 2020 §2.1), + 12·L·d·s attention (PaLM App. B); full
    recompute: 8N (+16·L·d·s). Not flops_per_token(shape), which counts a shape's matmuls one by one."""
    if recompute not in FLOPS_PER_PARAM_PER_TOKEN:
        raise InputError(f"{recompute!r} is not a recompute mode; expected one of {', '.join(FLOPS_PER_PARAM_PER_TOKEN)}")
    factor = FLOPS_PER_PARAM_PER_TOKEN[recompute]
    per_token = factor * N
    if layers and d_model and context:
        per_token += 2.0 * factor * layers * d_model * context  # 12·L·d·s at 6N; 16·L·d·s at 8N
    return per_token


def training_flops(N: float, D: float, per_token: float | None = None) -> float:
    """C = (FLOPs per token) · D, 6·N·D by default (Kaplan et al. 2020; Brown et al. 2020 Table D.1)."""
    return (6.0 * N if per_token is None else per_token) * D


# ----- KV cache ---------------------------------------------------------------------------------

def kv_cache_values_per_token(s: Shape) -> int:
    """Values cached per generated token, over all layers (0 for encoder-only models: nothing is decoded)."""
    if s.family == "encoder":
        return 0
    layers = s.decoder_layers if s.family == "encoder-decoder" else s.layers
    if s.is_mla:
        # MLA caches only c_KV and the shared RoPE key: (d_c + d_h^R) per layer (DeepSeek-V2 §2.1.2, Table 1).
        return layers * (s.kv_lora_rank + s.qk_rope_head_dim)
    # 2 (K and V) x n_kv_heads x head_dim per layer (Pope et al. 2022, §2; GQA via n_kv_heads: Ainslie et al. 2023).
    return layers * 2 * s.kv_width


def kv_cache_bytes_per_token(s: Shape, bytes_per_value: float) -> int:
    """Exact KV-cache bytes per token of context (self-attention; encoder-decoder cross-attention K/V,
    computed once per source token, are not included)."""
    total = kv_cache_values_per_token(s) * bytes_per_value
    return int(total) if float(total).is_integer() else math.ceil(total)


# ----- presets ----------------------------------------------------------------------------------

def derived_counts(preset: Any) -> dict:
    """Counts derived from a models preset's shape, for `llmplan presets show`; {} without a shape."""
    try:
        s = Shape.from_preset(preset)
    except InputError:
        return {}
    total = params(s)
    out = {
        "derived_params": total,
        "derived_non_embedding_params": non_embedding_params(s),
    }
    if s.is_moe:
        out["derived_active_params"] = active_params(s)
    published = preset.get("params_exact") or preset.get("params")
    if published:
        out["derived_vs_published"] = total / published
    if s.is_moe and preset.get("active_params"):
        out["derived_active_vs_published"] = active_params(s) / preset.get("active_params")
    return out


def with_changes(s: Shape, **changes: Any) -> Shape:
    """A copy of the shape with some fields changed (validated again)."""
    return replace(s, **changes)


def check_flag_heads(d_model: int | None, heads: int | None, head_dim: int | None) -> None:
    """A shape typed as flags: the heads must divide d_model unless --head-dim says the head width
    (else every head is d_model/heads wide: 4096/3 = 1365.33). Published shapes that share d_model
    over heads that do not divide it (GPT-3 XL: 24 heads, 2048) come from presets, not flags."""
    if d_model and heads and head_dim is None and d_model % heads:
        raise InputError(f"--d-model {d_model} is not divisible by --heads {heads} (head width {d_model / heads:.2f}); give --head-dim or a divisor of {d_model}")
