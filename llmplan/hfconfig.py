"""Read a Hugging Face `config.json` into a Shape (llmplan.arch).

Each supported `model_type` maps the keys of its transformers configuration class to Shape fields,
with that class's defaults for keys a file leaves out. Only the file is read; nothing is executed
and nothing is downloaded.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable

from llmplan.arch import Shape
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

    def need(self, *keys: str) -> Any:
        value = self.get(*keys)
        if value is None:
            raise InputError(f"{self.path}: config has no {' or '.join(repr(k) for k in keys)}; is it a complete config.json?")
        return value


def _llama(c: _Config, **extra: Any) -> Shape:
    # transformers LlamaConfig (also Mistral, Qwen2, Gemma, Mixtral): RMSNorm, rotary, SwiGLU, no biases.
    heads = c.need("num_attention_heads")
    fields = dict(
        layers=c.need("num_hidden_layers"), d_model=c.need("hidden_size"), heads=heads,
        kv_heads=c.get("num_key_value_heads", default=heads), head_dim=c.get("head_dim"),
        ffn=c.need("intermediate_size"), vocab=c.need("vocab_size"),
        context=c.get("max_position_embeddings", default=2048),
        tied_embeddings=bool(c.get("tie_word_embeddings", default=False)),
        bias=bool(c.get("attention_bias", "mlp_bias", default=False)),
        mlp="swiglu", norm="rmsnorm", positions="rotary",
    )
    fields.update(extra)
    return Shape(**fields)


def _qwen2(c: _Config) -> Shape:
    # Qwen2: q, k, v projections carry biases (modeling_qwen2: bias=True on q/k/v_proj only).
    return _llama(c, qkv_bias=True, bias=False)


def _gemma(c: _Config) -> Shape:
    # Gemma: GeGLU MLP (hidden_act gelu, gated), head_dim 256, tied embeddings.
    return _llama(c, mlp="geglu", tied_embeddings=bool(c.get("tie_word_embeddings", default=True)))


def _mixtral(c: _Config) -> Shape:
    return _llama(c, experts=c.need("num_local_experts"), experts_per_token=c.need("num_experts_per_tok"))


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
    new = bool(c.get("new_decoder_architecture", default=False))
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
        layer_norms=2 if (new or not parallel) else 1,
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
    layers = c.need("num_layers")
    return Shape(
        family="encoder-decoder", encoder_layers=layers, decoder_layers=c.get("num_decoder_layers", default=layers),
        d_model=c.need("d_model"), heads=c.need("num_heads"), head_dim=c.need("d_kv"), ffn=c.need("d_ff"),
        vocab=c.need("vocab_size"), context=c.get("n_positions", default=512),
        mlp="geglu" if proj.startswith("gated") else "relu", norm="rmsnorm", positions="relative", bias=False,
        tied_embeddings=bool(c.get("tie_word_embeddings", default=True)),
        relative_buckets=c.get("relative_attention_num_buckets", default=32),
    )


def _deepseek_v3(c: _Config) -> Shape:
    # DeepseekV3Config: MLA, first_k_dense_replace dense layers, then shared + routed experts.
    # The multi-token-prediction module (num_nextn_predict_layers) is not counted: the 671B main model.
    return Shape(
        layers=c.need("num_hidden_layers"), d_model=c.need("hidden_size"), heads=c.need("num_attention_heads"),
        ffn=c.need("intermediate_size"), vocab=c.need("vocab_size"),
        context=c.get("max_position_embeddings", default=4096), tied_embeddings=bool(c.get("tie_word_embeddings", default=False)),
        mlp="swiglu", norm="rmsnorm", positions="rotary", bias=False,
        experts=c.need("n_routed_experts"), experts_per_token=c.need("num_experts_per_tok"),
        shared_experts=c.get("n_shared_experts", default=0), moe_ffn=c.need("moe_intermediate_size"),
        dense_layers=c.get("first_k_dense_replace", default=0),
        q_lora_rank=c.get("q_lora_rank"), kv_lora_rank=c.need("kv_lora_rank"),
        qk_rope_head_dim=c.need("qk_rope_head_dim"), qk_nope_head_dim=c.need("qk_nope_head_dim"),
        v_head_dim=c.need("v_head_dim"),
    )


READERS: dict[str, Callable[[_Config], Shape]] = {
    "llama": _llama,
    "mistral": _llama,
    "mixtral": _mixtral,
    "qwen2": _qwen2,
    "gemma": _gemma,
    "gpt2": _gpt2,
    "gpt_neox": _gpt_neox,
    "falcon": _falcon,
    "RefinedWeb": _falcon,
    "RefinedWebModel": _falcon,
    "bloom": _bloom,
    "bert": _bert,
    "roberta": _roberta,
    "t5": _t5,
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
            f"{path}: model_type {model_type!r} is not supported; known types: {', '.join(sorted(READERS, key=str.lower))} "
            "(or give the shape as flags)"
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
