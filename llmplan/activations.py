"""Activation memory of a training step: what PyTorch keeps for backward in a LLaMA-style decoder.

Two models live here:

* `saved_tensors(...)`: the tensors a Hugging Face `LlamaForCausalLM` forward pass saves for
  backward, counted one by one with the reason each is kept (RMSNorm's fp32 work, the casts that
  autocast makes per consumer, rotary outputs, SwiGLU's four intermediates, GQA's repeated KV heads
  under eager attention, eager's a·s² score matrices, the logits and the loss's fp32 log-probs).
  Checked against H100 measurements (tests/data/gpu_memory_calibration.jsonl) and against
  `torch.autograd.graph.saved_tensors_hooks` counts on CPU (see tests/data/README.md).
* `korthikanti_layer_bytes(...)`: the textbook per-layer formula of Korthikanti et al. 2022
  ("Reducing Activation Recomputation in Large Transformer Models", Table 2), for comparison.

Pure functions, no numpy, no printing. Sizes are bytes; `T = b·s` tokens per micro-batch.
"""

from __future__ import annotations

from dataclasses import dataclass

PRECISIONS = ("fp32", "amp", "mixed", "pure")
RECOMPUTE = ("none", "selective", "full")
ATTENTION = ("flash", "eager")


@dataclass(frozen=True)
class Saved:
    """One saved tensor (or group of same-sized tensors), bytes per micro-batch, and why it is kept."""

    name: str
    bytes: float
    why: str


@dataclass(frozen=True)
class Dims:
    """The sizes the activation count needs (a LLaMA-style decoder block)."""

    layers: int
    h: int  # d_model
    a: int  # query heads
    kv: int  # key/value heads
    hd: int  # head dimension
    i: int  # FFN width (per token: experts_per_token · expert width for MoE)
    V: int  # vocabulary
    gated: bool = True  # SwiGLU/GeGLU: gate, act(gate), up, product
    rmsnorm: bool = True


def dims_of(shape) -> Dims:
    """Dims from an llmplan.arch.Shape (decoder-only); MoE counts the experts a token uses."""
    a = shape.heads
    hd = shape.attn_width // a
    kv = shape.n_kv_heads
    gated = shape.mlp in ("swiglu", "geglu")
    i = shape.d_ffn
    if shape.experts:
        i = shape.d_expert * (shape.experts_per_token + shape.shared_experts)
    return Dims(shape.layers, shape.d_model, a, kv, hd, i, shape.vocab, gated, shape.norm == "rmsnorm")


def _bytes(precision: str, compute_bytes: int) -> tuple[int, int, bool]:
    """(residual-stream bytes, matmul-output bytes, autocast?) for a precision mode.

    fp32: everything fp32. amp: fp32 weights, so the residual stream, the embeddings and RMSNorm
    stay fp32 while autocast runs matmuls in the compute dtype. mixed/pure: the model itself is in
    the compute dtype (Megatron/DeepSpeed mixed keeps its fp32 master copy in the optimizer only).
    """
    if precision == "fp32":
        return 4, 4, False
    c = compute_bytes
    if precision == "amp":
        return 4, c, True
    return c, c, False


def layer_saved(d: Dims, b: int, s: int, precision: str = "amp", compute_bytes: int = 2,
                attention: str = "flash", recompute: str = "none", tp: int = 1) -> list[Saved]:
    """Tensors one decoder layer keeps for backward (HF LlamaDecoderLayer, PyTorch autograd).

    `tp` divides what Megatron's tensor parallelism splits (heads and FFN columns); the norms and
    the inputs of the column-parallel matmuls stay whole (no sequence parallelism).
    """
    T = b * s
    r, c, amp = _bytes(precision, compute_bytes)
    if recompute == "full":
        # torch.utils.checkpoint keeps only each layer's input (the residual stream).
        return [Saved("layer input (checkpoint)", T * d.h * r, "gradient checkpointing keeps the block's input only and reruns the block in backward")]
    casts = 3 if amp else 1  # autocast casts the fp32 input once per consuming linear (no cache for non-leaf tensors)
    mlp_casts = (2 if d.gated else 1) if amp else 1
    q = T * d.a * d.hd // tp
    kvh = T * d.kv * d.hd // tp
    out: list[Saved] = []
    norm = "RMSNorm" if d.rmsnorm else "LayerNorm"
    for which in ("attention", "MLP"):
        out.append(Saved(f"{which} {norm} input, fp32", T * d.h * 4, "the norm upcasts to fp32 and pow/mul save that fp32 tensor (the fp32 residual itself under fp32/amp, a copy otherwise)"))
        out.append(Saved(f"{which} {norm} normalised x", T * d.h * r, "weight · x̂ saves x̂ (cast back to the input dtype) for the weight's gradient"))
        out.append(Saved(f"{which} {norm} 1/rms", T * 4, "rsqrt output, one fp32 per token"))
        if which == "attention":
            n = casts
            out.append(Saved("q/k/v projection input" + (" ×3 casts" if amp else ""), n * T * d.h * (c if amp else r),
                             "each linear saves its input; under autocast q, k and v each get their own low-precision copy"))
            if attention == "eager" and recompute == "none":
                grouped = d.a  # repeat_kv expands K and V to every query head before the matmuls
                out.append(Saved("q (rotary applied)", q * c, "Q·Kᵀ saves Q (autocast copy of the fp32 rotary output under amp)"))
                out.append(Saved("k (rotary, repeated to all heads)", T * grouped * d.hd // tp * c, "Q·Kᵀ saves K after repeat_kv copies the KV heads for GQA"))
                out.append(Saved("attention probabilities, fp32", T * d.a // tp * s * 4, "softmax(dtype=fp32) saves its a·s² output"))
                if c != 4:
                    out.append(Saved("attention probabilities, cast", T * d.a // tp * s * c, "probs.to(dtype) then P·V saves the low-precision copy"))
                out.append(Saved("v (repeated to all heads)", T * grouped * d.hd // tp * c, "P·V saves V after repeat_kv"))
                out.append(Saved("attention output (contiguous)", q * c, "transpose(1,2).contiguous() copy saved by o_proj"))
            else:
                # SDPA (flash / memory-efficient kernel): saves q, k, v, output and the logsumexp;
                # GQA stays native (enable_gqa), the s² scores are recomputed in backward.
                # Selective recomputation (Korthikanti 2022 §5) is the same set for eager attention.
                out.append(Saved("q (rotary applied)", q * c, "the attention kernel saves Q (its own low-precision cast of the fp32 rotary output under amp)"))
                out.append(Saved("k (rotary applied)", kvh * c, "the kernel saves K at the KV-head count"))
                out.append(Saved("v", kvh * c, "the kernel saves V"))
                out.append(Saved("attention output", q * c, "saved by the kernel for backward and reused as o_proj's input"))
                out.append(Saved("logsumexp", T * d.a // tp * 4, "flash/efficient kernels keep one fp32 per head and token"))
        else:
            out.append(Saved("MLP input" + (f" ×{mlp_casts} casts" if amp else ""), mlp_casts * T * d.h * (c if amp else r),
                             "gate and up projections save their input (one autocast copy each under amp)"))
            if d.gated:
                out.append(Saved("gate projection output", T * d.i // tp * c, "SiLU saves its input"))
                out.append(Saved("act(gate)", T * d.i // tp * c, "act(gate) · up saves both factors"))
                out.append(Saved("up projection output", T * d.i // tp * c, "act(gate) · up saves both factors"))
                out.append(Saved("act(gate) · up", T * d.i // tp * c, "down projection saves its input"))
            else:
                out.append(Saved("fc1 output", T * d.i // tp * c, "GeLU saves its input"))
                out.append(Saved("activation output", T * d.i // tp * c, "fc2 saves its input"))
    return out


def head_saved(d: Dims, b: int, s: int, precision: str = "amp", compute_bytes: int = 2, tp: int = 1) -> list[Saved]:
    """Final norm, lm_head, logits and the loss (HF ForCausalLMLoss: logits.float() then cross-entropy)."""
    T = b * s
    r, c, amp = _bytes(precision, compute_bytes)
    return [
        Saved("token ids", T * 8, "the embedding lookup saves its int64 indices"),
        Saved("final RMSNorm input, fp32", T * d.h * 4, "as in every layer"),
        Saved("final RMSNorm normalised x", T * d.h * r, "as in every layer"),
        Saved("lm_head input", T * d.h * (c if amp else r), "lm_head saves its input (an autocast copy under amp)"),
        Saved("logits", T * d.V * c // tp, "lm_head output (vocab-parallel under TP), returned to the caller and alive until backward"),
        Saved("log-probabilities, fp32", T * d.V * 4 // tp, "the loss upcasts logits to fp32; log_softmax saves its fp32 output"),
    ]


def loss_backward_bytes(d: Dims, b: int, s: int, tp: int = 1) -> float:
    """Transient at the start of backward: d(log-probs) and d(logits), both fp32 T·V (measured: it sets the peak)."""
    return 2 * b * s * d.V * 4 // tp


def weight_copy_bytes(linear_params: float, lm_head_params: float, precision: str, compute_bytes: int, recompute: str) -> float:
    """Autocast's low-precision copies of fp32 weights, saved by every matmul for backward (amp only).

    With full recomputation the blocks' copies are made again in backward; lm_head's stays.
    """
    if precision != "amp" or compute_bytes >= 4:
        return 0
    kept = lm_head_params if recompute == "full" else linear_params + lm_head_params
    return kept * compute_bytes


def korthikanti_layer_bytes(s: int, b: int, h: int, a: int, t: int = 1, recompute: str = "none", sp: bool = False) -> float:
    """Korthikanti et al. 2022, Table 2: activation bytes per transformer layer (GPT block, 16-bit, dropout).

    none: sbh(10 + 24/t + 5as/(ht)); with sequence parallelism sbh(34/t + 5as/(ht));
    selective: sbh(10 + 24/t) (sp: 34·sbh/t); full: 2sbh (sp: 2sbh/t).
    """
    sbh = s * b * h
    if recompute == "full":
        return 2 * sbh / (t if sp else 1)
    attention_core = 0 if recompute == "selective" else 5 * a * s / (h * t)
    if sp:
        return sbh * (34 / t + attention_core)
    return sbh * (10 + 24 / t + attention_core)


def total(items: list[Saved]) -> float:
    return sum(item.bytes for item in items)
