"""Read a Hugging Face `config.json` into a Shape (llmplan.model.arch).

Each supported `model_type` maps the keys of its transformers configuration class to Shape fields,
with that class's defaults for keys a file leaves out; which weights and biases each family has was
read from its transformers `modeling_<family>.py` (named at each reader). Only the file is read;
nothing is executed and nothing is downloaded. Counts are of the language model: a multimodal
config (gemma3) is counted without its vision tower and projector.

The trained context: `rope_scaling` (or `rope_parameters`) `original_max_position_embeddings`, or a
top-level `original_max_position_embeddings` (Phi-3), sets Shape.train_context when it is below
`max_position_embeddings`, so FLOPs per token use the sequence of pre-training.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable

from llmplan.model.arch import Shape
from llmplan.errors import InputError


class _Config:
    """A config dict with lookups that fail with one clear line."""

    def __init__(self, data: dict, path: str) -> None:
        self.data, self.path = data, path

    def get(self, *keys: str, default: Any = None) -> Any:
        for key in keys:
            if self.data.get(key) is not None:
                return self.data[key]
        return default

    def has(self, key: str) -> bool:
        """The key is in the file, even as null (DeepSeek-V2-Lite's q_lora_rank: null)."""
        return key in self.data

    def need(self, *keys: str) -> Any:
        value = self.get(*keys)
        if value is None:
            raise InputError(f"{self.path}: config has no {' or '.join(repr(k) for k in keys)}; is it a complete config.json?")
        return value


def train_context(c: _Config, context: int) -> int | None:
    """The pre-training sequence of a rope-extended model (None: the same as the context)."""
    scaling = c.get("rope_scaling", "rope_parameters")
    original = scaling.get("original_max_position_embeddings") if isinstance(scaling, dict) else None
    original = original or c.get("original_max_position_embeddings")
    if isinstance(original, int) and not isinstance(original, bool) and 0 < original < context:
        return original
    return None


def _llama(c: _Config, **extra: Any) -> Shape:
    # modeling_llama (also Mistral, Qwen2/3, Gemma, Mixtral, OLMo): RMSNorm, rotary, SwiGLU;
    # attention_bias on q, k, v and o_proj, mlp_bias on gate, up and down_proj, each on its own.
    heads = c.need("num_attention_heads")
    context = c.get("max_position_embeddings", default=2048)
    attention_bias = bool(c.get("attention_bias", default=False))
    fields = dict(
        layers=c.need("num_hidden_layers"), d_model=c.need("hidden_size"), heads=heads,
        kv_heads=c.get("num_key_value_heads", default=heads), head_dim=c.get("head_dim"),
        ffn=c.need("intermediate_size"), vocab=c.need("vocab_size"),
        context=context, train_context=train_context(c, context),
        tied_embeddings=bool(c.get("tie_word_embeddings", default=False)),
        bias=False, qkv_bias=attention_bias, attn_out_bias=attention_bias, mlp_bias=bool(c.get("mlp_bias", default=False)),
        mlp="swiglu", norm="rmsnorm", positions="rotary",
    )
    fields.update(extra)
    return Shape(**fields)


def _qwen2(c: _Config) -> Shape:
    # Qwen2: q, k, v projections carry biases (modeling_qwen2: bias=True on q/k/v_proj only).
    return _llama(c, qkv_bias=True, attn_out_bias=False)


def _qwen3(c: _Config) -> Shape:
    # modeling_qwen3: q_norm and k_norm, RMSNorm(head_dim) each, shared by the heads; head_dim 128 by default.
    return _llama(c, head_dim=c.get("head_dim", default=128), qk_norm="head")


def _qwen3_moe(c: _Config) -> Shape:
    # modeling_qwen3_moe: every layer (decoder_sparse_step 1, no mlp_only_layers) routes over
    # num_experts SwiGLU experts of moe_intermediate_size (no shared expert); router num_experts x d.
    step, dense = c.get("decoder_sparse_step", default=1), c.get("mlp_only_layers", default=[])
    if step != 1 or dense:
        raise InputError("qwen3_moe with decoder_sparse_step other than 1 or mlp_only_layers is not modelled; use --safetensors")
    return _llama(c, head_dim=c.get("head_dim", default=128), qk_norm="head", experts=c.get("num_experts", default=128),
                  experts_per_token=c.get("num_experts_per_tok", default=8), moe_ffn=c.get("moe_intermediate_size", default=768))


def _gemma(c: _Config) -> Shape:
    # Gemma: GeGLU MLP (hidden_act gelu, gated), head_dim 256, tied embeddings.
    return _llama(c, mlp="geglu", head_dim=c.get("head_dim", default=256), tied_embeddings=bool(c.get("tie_word_embeddings", default=True)))


def _gemma2(c: _Config) -> Shape:
    # modeling_gemma2: four RMSNorms per layer (input, post_attention, pre_ and post_feedforward).
    return _llama(c, mlp="geglu", head_dim=c.get("head_dim", default=256), layer_norms=4,
                  tied_embeddings=bool(c.get("tie_word_embeddings", default=True)))


# Gemma3TextConfig's defaults: the text_config of a multimodal gemma3 file names only what differs.
GEMMA3_TEXT_DEFAULTS = dict(vocab_size=262_208, hidden_size=2304, intermediate_size=9216, num_hidden_layers=26,
                            num_attention_heads=8, num_key_value_heads=4, head_dim=256, max_position_embeddings=131_072)


def _gemma3_text(c: _Config) -> Shape:
    # modeling_gemma3: Gemma 2's four norms per layer, plus q_norm and k_norm of head_dim.
    c = _Config({**GEMMA3_TEXT_DEFAULTS, **{k: v for k, v in c.data.items() if v is not None}}, c.path)
    return _llama(c, mlp="geglu", layer_norms=4, qk_norm="head", tied_embeddings=bool(c.get("tie_word_embeddings", default=True)))


def _gemma3(c: _Config) -> Shape:
    # Gemma3ForConditionalGeneration: the language model of text_config (vision tower not counted).
    text = c.get("text_config")
    if not isinstance(text, dict):
        raise InputError("a gemma3 config needs its text_config (the language model)")
    inner = dict(text)
    inner.setdefault("tie_word_embeddings", c.get("tie_word_embeddings", default=True))
    return _gemma3_text(_Config(inner, c.path))


def _mixtral(c: _Config) -> Shape:
    # modeling_mixtral: num_local_experts SwiGLU experts (w1, w2, w3), router gate num_experts x d.
    return _llama(c, experts=c.need("num_local_experts"), experts_per_token=c.need("num_experts_per_tok"))


def _olmo(c: _Config) -> Shape:
    # modeling_olmo: OlmoLayerNorm has no weight and no bias (non-parametric LayerNorm).
    return _llama(c, norm="layernorm", norm_weights=False)


def _olmo2(c: _Config) -> Shape:
    # modeling_olmo2: q_norm RMSNorm(heads x head_dim), k_norm RMSNorm(kv_heads x head_dim); norms
    # after attention and after the MLP only (post_attention, post_feedforward): two per layer.
    return _llama(c, qk_norm="full")


def _phi(c: _Config) -> Shape:
    # modeling_phi (Phi-1/1.5/2): parallel block with one LayerNorm (input_layernorm); q, k, v, dense,
    # fc1, fc2 all with biases; final_layernorm; lm_head with a bias; optional q/k LayerNorm(head_dim).
    heads = c.need("num_attention_heads")
    context = c.get("max_position_embeddings", default=2048)
    return Shape(
        layers=c.need("num_hidden_layers"), d_model=c.need("hidden_size"), heads=heads,
        kv_heads=c.get("num_key_value_heads", default=heads), ffn=c.need("intermediate_size"), vocab=c.need("vocab_size"),
        context=context, train_context=train_context(c, context), mlp="gelu", norm="layernorm", positions="rotary", bias=True,
        layer_norms=1, head_bias=True, qk_norm="head" if c.get("qk_layernorm", default=False) else None,
        tied_embeddings=bool(c.get("tie_word_embeddings", default=False)),
    )


def _phi3(c: _Config) -> Shape:
    # modeling_phi3 (Phi-3, Phi-3.5, Phi-4): fused qkv_proj and gate_up_proj, the same weights as
    # Llama's q/k/v and gate/up; no biases; trained at original_max_position_embeddings (LongRoPE).
    return _llama(c)


def _gptj(c: _Config) -> Shape:
    # modeling_gptj: parallel block with one LayerNorm (ln_1); q, k, v, out_proj without bias; fc_in,
    # fc_out with bias; ln_f; lm_head untied, with a bias; n_inner defaults to 4 x n_embd.
    d = c.need("n_embd", "hidden_size")
    return Shape(
        layers=c.need("n_layer", "num_hidden_layers"), d_model=d, heads=c.need("n_head", "num_attention_heads"),
        ffn=c.get("n_inner", default=4 * d), vocab=c.get("vocab_size", default=50400), context=c.get("n_positions", default=2048),
        mlp="gelu", norm="layernorm", positions="rotary", bias=False, mlp_bias=True, layer_norms=1, head_bias=True,
        tied_embeddings=bool(c.get("tie_word_embeddings", default=False)),
    )


def _opt(c: _Config) -> Shape:
    # modeling_opt: learned positions with an offset of 2 (max_position_embeddings + 2 rows); q, k, v,
    # out_proj, fc1, fc2 with biases (enable_bias); two LayerNorms per layer and a final one; ReLU; tied.
    d = c.need("hidden_size")
    if c.get("word_embed_proj_dim", default=d) != d:
        raise InputError("OPT with word_embed_proj_dim != hidden_size (OPT-350m's project_in/out) is not modelled; use --safetensors")
    context = c.get("max_position_embeddings", default=2048)
    final = bool(c.get("do_layer_norm_before", default=True)) and not c.get("_remove_final_layer_norm", default=False)
    return Shape(
        layers=c.need("num_hidden_layers"), d_model=d, heads=c.need("num_attention_heads"), ffn=c.need("ffn_dim"),
        vocab=c.get("vocab_size", default=50272), context=context, position_rows=context + 2, mlp="relu", norm="layernorm",
        positions="learned", bias=bool(c.get("enable_bias", default=True)), final_norm=final,
        norm_weights=bool(c.get("layer_norm_elementwise_affine", default=True)),
        tied_embeddings=bool(c.get("tie_word_embeddings", default=True)),
    )


def _starcoder2(c: _Config) -> Shape:
    # modeling_starcoder2: LayerNorm (weight and bias) twice per layer and at the end; q, k, v, o and
    # c_fc, c_proj with biases when use_bias (default true); GQA; plain GELU MLP; tied by default.
    heads = c.need("num_attention_heads")
    context = c.get("max_position_embeddings", default=4096)
    return Shape(
        layers=c.need("num_hidden_layers"), d_model=c.need("hidden_size"), heads=heads,
        kv_heads=c.get("num_key_value_heads", default=heads), ffn=c.need("intermediate_size"), vocab=c.need("vocab_size"),
        context=context, train_context=train_context(c, context), mlp="gelu", norm="layernorm", positions="rotary",
        bias=bool(c.get("use_bias", default=True)), tied_embeddings=bool(c.get("tie_word_embeddings", default=True)),
    )


def _distilbert(c: _Config) -> Shape:
    # modeling_distilbert, DistilBertModel: word and position embeddings (no token types) and a
    # LayerNorm; per layer q/k/v/out_lin, lin1, lin2 with biases and two LayerNorms; no pooler.
    if c.get("sinusoidal_pos_embds", default=False):
        raise InputError("DistilBERT with sinusoidal_pos_embds is not modelled; use --safetensors")
    rows = c.get("max_position_embeddings", default=512)
    d = c.get("dim", default=768)
    return Shape(
        family="encoder", layers=c.get("n_layers", default=6), d_model=d, heads=c.get("n_heads", default=12),
        ffn=c.get("hidden_dim", default=4 * d), vocab=c.get("vocab_size", default=30522), context=rows, position_rows=rows,
        token_types=0, mlp="gelu", norm="layernorm", positions="learned", bias=True, tied_embeddings=True,
        embedding_norm=True, final_norm=False, pooler=False,
    )


def _gpt2(c: _Config) -> Shape:
    # GPT2Config: learned positions, LayerNorm, biases, tied head, n_inner default 4·n_embd.
    d = c.need("n_embd", "hidden_size")
    return Shape(
        layers=c.need("n_layer", "num_hidden_layers"), d_model=d, heads=c.need("n_head", "num_attention_heads"),
        ffn=c.get("n_inner", default=4 * d), vocab=c.need("vocab_size"), context=c.get("n_positions", "n_ctx", default=1024),
        mlp="gelu", norm="layernorm", positions="learned", bias=True,
        tied_embeddings=bool(c.get("tie_word_embeddings", default=True)),
    )


def _gpt_neox(c: _Config) -> Shape:
    # GPTNeoXConfig (Pythia): LayerNorm, biases, rotary, untied head by default.
    return Shape(
        layers=c.need("num_hidden_layers"), d_model=c.need("hidden_size"), heads=c.need("num_attention_heads"),
        ffn=c.need("intermediate_size"), vocab=c.need("vocab_size"), context=c.get("max_position_embeddings", default=2048),
        mlp="gelu", norm="layernorm", positions="rotary", bias=True,
        tied_embeddings=bool(c.get("tie_word_embeddings", default=False)),
    )


def _falcon(c: _Config) -> Shape:
    # FalconConfig: new_decoder_architecture (40B/180B) has GQA and two norms per layer; otherwise
    # multi_query (7B: one KV head) and a parallel block with one norm.
    d = c.need("hidden_size")
    heads = c.need("num_attention_heads", "n_head")
    # The legacy "RefinedWeb" type (Falcon-40B's first config, modelling_RW.py) is the new decoder
    # architecture, with its groups in n_head_kv; "RefinedWebModel" (Falcon-7B) is multi-query.
    legacy_new = c.get("model_type") == "RefinedWeb" or (c.has("n_head_kv") and c.get("model_type") != "RefinedWebModel")
    new = bool(c.get("new_decoder_architecture", default=legacy_new))
    if new:
        kv = c.get("num_kv_heads", "n_head_kv", default=heads)
    else:
        kv = 1 if c.get("multi_query", default=True) else heads
    parallel = bool(c.get("parallel_attn", default=True))
    return Shape(
        layers=c.need("num_hidden_layers", "n_layer"), d_model=d, heads=heads, kv_heads=kv,
        ffn=c.get("ffn_hidden_size", default=4 * d), vocab=c.need("vocab_size"),
        context=c.get("max_position_embeddings", default=2048),
        mlp="gelu", norm="layernorm", positions="alibi" if c.get("alibi", default=False) else "rotary",
        bias=bool(c.get("bias", default=False)), tied_embeddings=bool(c.get("tie_word_embeddings", default=True)),
        layer_norms=c.get("num_ln_in_parallel_attn", default=2) if new else (1 if parallel else 2),
    )


def _bloom(c: _Config) -> Shape:
    # BloomConfig: ALiBi, LayerNorm after the embeddings, biases, tied head, FFN 4·d.
    d = c.need("hidden_size", "n_embed")
    return Shape(
        layers=c.need("n_layer", "num_hidden_layers"), d_model=d, heads=c.need("n_head", "num_attention_heads"),
        ffn=4 * d, vocab=c.need("vocab_size"), context=c.get("seq_length", default=2048),
        mlp="gelu", norm="layernorm", positions="alibi", bias=True, embedding_norm=True,
        tied_embeddings=bool(c.get("tie_word_embeddings", default=True)),
    )


def _bert(c: _Config, position_rows_default: int = 512, token_types_default: int = 2) -> Shape:
    # BertConfig / RobertaConfig, counted as BertModel/RobertaModel with the pooler (no MLM head).
    rows = c.get("max_position_embeddings", default=position_rows_default)
    return Shape(
        family="encoder", layers=c.need("num_hidden_layers"), d_model=c.need("hidden_size"),
        heads=c.need("num_attention_heads"), ffn=c.need("intermediate_size"), vocab=c.need("vocab_size"),
        context=min(rows, 512), position_rows=rows, token_types=c.get("type_vocab_size", default=token_types_default),
        mlp="gelu", norm="layernorm", positions="learned", bias=True, tied_embeddings=True,
        embedding_norm=True, final_norm=False, pooler=True,
    )


def _roberta(c: _Config) -> Shape:
    return _bert(c, position_rows_default=514, token_types_default=1)


def _t5(c: _Config) -> Shape:
    # T5Config: relative attention biases, RMS-style norm without bias, no biases, inner width
    # num_heads·d_kv; feed_forward_proj "relu" (T5) or "gated-gelu" (T5 v1.1, Flan-T5).
    proj = str(c.get("feed_forward_proj", default="relu"))
    # T5Config: is_gated_act = feed_forward_proj starts with "gated-"; a file that says
    # "feed_forward_proj": "gelu" with "is_gated_act": true has the gated wi_0/wi_1 MLP too.
    gated = proj.startswith("gated") or bool(c.get("is_gated_act", default=False))
    layers = c.need("num_layers")
    return Shape(
        family="encoder-decoder", encoder_layers=layers, decoder_layers=c.get("num_decoder_layers", default=layers),
        d_model=c.need("d_model"), heads=c.need("num_heads"), head_dim=c.need("d_kv"), ffn=c.need("d_ff"),
        vocab=c.need("vocab_size"), context=c.get("n_positions", default=512),
        mlp="geglu" if gated else ("gelu" if "gelu" in proj else "relu"), norm="rmsnorm", positions="relative", bias=False,
        tied_embeddings=bool(c.get("tie_word_embeddings", default=True)),
        relative_buckets=c.get("relative_attention_num_buckets", default=32),
    )


def _deepseek(c: _Config, topk_method: str) -> Shape:
    # modeling_deepseek_v2 / _v3: MLA (q_a_proj, q_a_layernorm, q_b_proj, or one q_proj when
    # q_lora_rank is null; kv_a_proj_with_mqa, kv_a_layernorm, kv_b_proj, o_proj), first_k_dense_replace
    # dense layers, then n_shared_experts + n_routed_experts experts of moe_intermediate_size and a
    # router; V3's "noaux_tc" routing adds e_score_correction_bias, one value per routed expert (a
    # parameter in DeepSeek's released modelling code, a stored buffer in transformers').
    # The multi-token-prediction module (num_nextn_predict_layers) is not counted: V3's 671B main model.
    if c.get("attention_bias", default=False) or c.get("mlp_bias", default=False):
        raise InputError("DeepSeek with attention_bias or mlp_bias is not modelled; use --safetensors")
    if c.get("moe_layer_freq", default=1) != 1:
        raise InputError("DeepSeek with moe_layer_freq other than 1 is not modelled; use --safetensors")
    context = c.get("max_position_embeddings", default=4096)
    q_lora = c.data["q_lora_rank"] if c.has("q_lora_rank") else 1536
    return Shape(
        layers=c.need("num_hidden_layers"), d_model=c.need("hidden_size"), heads=c.need("num_attention_heads"),
        ffn=c.need("intermediate_size"), vocab=c.need("vocab_size"), context=context, train_context=train_context(c, context),
        tied_embeddings=bool(c.get("tie_word_embeddings", default=False)),
        mlp="swiglu", norm="rmsnorm", positions="rotary", bias=False,
        experts=c.need("n_routed_experts"), experts_per_token=c.need("num_experts_per_tok"),
        shared_experts=c.get("n_shared_experts", default=0), moe_ffn=c.need("moe_intermediate_size"),
        dense_layers=c.get("first_k_dense_replace", default=0), router_bias=c.get("topk_method", default=topk_method) == "noaux_tc",
        q_lora_rank=q_lora, kv_lora_rank=c.get("kv_lora_rank", default=512),
        qk_rope_head_dim=c.get("qk_rope_head_dim", default=64), qk_nope_head_dim=c.get("qk_nope_head_dim", default=128),
        v_head_dim=c.get("v_head_dim", default=128),
    )


def _deepseek_v2(c: _Config) -> Shape:
    return _deepseek(c, "greedy")


def _deepseek_v3(c: _Config) -> Shape:
    return _deepseek(c, "noaux_tc")


READERS: dict[str, Callable[[_Config], Shape]] = {
    "llama": _llama,
    "mistral": _llama,
    "mixtral": _mixtral,
    "qwen2": _qwen2,
    "qwen3": _qwen3,
    "qwen3_moe": _qwen3_moe,
    "gemma": _gemma,
    "gemma2": _gemma2,
    "gemma3": _gemma3,
    "gemma3_text": _gemma3_text,
    "olmo": _olmo,
    "olmo2": _olmo2,
    "phi": _phi,
    "phi3": _phi3,
    "gptj": _gptj,
    "opt": _opt,
    "starcoder2": _starcoder2,
    "distilbert": _distilbert,
    "gpt2": _gpt2,
    "gpt_neox": _gpt_neox,
    "falcon": _falcon,
    "RefinedWeb": _falcon,
    "RefinedWebModel": _falcon,
    "bloom": _bloom,
    "bert": _bert,
    "roberta": _roberta,
    "t5": _t5,
    "deepseek_v2": _deepseek_v2,
    "deepseek_v3": _deepseek_v3,
}


def shape_from_config(data: dict, path: str = "config.json") -> Shape:
    """A Shape from an already-parsed config dict."""
    if not isinstance(data, dict):
        raise InputError(f"{path}: a config.json must hold a JSON object")
    model_type = data.get("model_type")
    if model_type is None:
        raise InputError(f"{path}: no 'model_type' key; known types: {', '.join(sorted(READERS, key=str.lower))}")
    reader = READERS.get(model_type) or READERS.get(str(model_type).lower())
    if reader is None:
        raise InputError(
            f"{path}: model_type {model_type!r} is not read; count its checkpoint with --safetensors PATH (any architecture) "
            f"or give the shape as flags; supported: {', '.join(sorted(READERS, key=str.lower))}"
        )
    try:
        shape = reader(_Config(data, path))
    except (TypeError, ValueError) as error:
        raise InputError(f"{path}: a value has the wrong type ({error})") from None
    except InputError as error:
        message = str(error)
        raise InputError(message if message.startswith(path) else f"{path}: {message}") from None
    base = os.path.basename(path)
    folder = os.path.basename(os.path.dirname(os.path.abspath(path)))
    name = data.get("_name_or_path") or (folder if base == "config.json" else os.path.splitext(base)[0]) or model_type
    from dataclasses import replace

    return replace(shape, name=str(name))


def shape_from_hf_config(path: str | os.PathLike[str]) -> Shape:
    """Read a local Hugging Face config.json (or the folder holding one) into a Shape."""
    p = os.fspath(path)
    if os.path.isdir(p):
        p = os.path.join(p, "config.json")
    try:
        with open(p, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise InputError(f"--hf-config {p!r}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"--hf-config {p!r}: cannot be read ({error.__class__.__name__})") from None
    except json.JSONDecodeError as error:
        raise InputError(f"--hf-config {p!r}: not valid JSON (line {error.lineno}: {error.msg})") from None
    return shape_from_config(data, p)
