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

from llmplan.records import record


# Activation recomputation: none, selective (attention scores only; Korthikanti et al. 2022 §5) or full
# (every layer's forward again in backward). The codes the layout search uses are the indices.
RECOMPUTE = ("none", "selective", "full")

PRECISIONS = ("fp32", "amp", "mixed", "pure")
# SDPA's kernels (torch.nn.attention.SDPBackend) and HF's eager attention; "auto" resolves by `sdpa_backend`.
KERNELS = ("flash", "mem-efficient", "math", "eager")
ATTENTION = ("auto", *KERNELS)
FLASH_MAX_HEAD_DIM = 256  # sdp_utils.cpp check_head_dim_size_flash: q, k, v head dims equal and <= 256


def sdpa_backend(compute_bytes: int, head_dim: int, gqa: bool) -> str:
    """The kernel CUDA SDPA dispatches for a HF LLaMA-style causal training forward (no mask, no dropout).

    PyTorch's select_sdp_backend (aten/src/ATen/native/transformers/cuda/sdp_utils.cpp; rules read from
    torch 2.11, the calibration's, and checked against main at 001f694a) tries flash, then memory-efficient,
    then math. Flash: fp16/bf16 only and head_dim <= 256 (GQA native through enable_gqa). Memory-efficient:
    fp32/fp16/bf16, head_dim a multiple of the GEMM alignment; in torch 2.11 it refuses enable_gqa
    (check_batch_size_and_num_heads_dense without GQA), so fp32 with GQA falls to math (newer main accepts it).
    transformers passes enable_gqa=True when there is no padding mask (sdpa_attention.use_gqa_in_sdpa).
    """
    if compute_bytes == 2 and head_dim <= FLASH_MAX_HEAD_DIM:
        return "flash"
    alignment = 8 if compute_bytes == 2 else 4  # minimum_gemm_alignment on sm80+: 128 bits / element width
    if not gqa and head_dim % alignment == 0:
        return "mem-efficient"
    return "math"


@record
class Saved:
    """One saved tensor (or group of same-sized tensors), bytes per micro-batch, and why it is kept."""

    name: str
    bytes: float
    why: str


@record
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
    experts: int = 0  # routed experts (MoE); 0: dense
    top_k: int = 0  # experts per token
    shared: int = 0  # shared experts
    i_expert: int = 0  # one expert's FFN width
    moe_layers: int = 0  # layers with an MoE FFN (the rest use width i)


def dims_of(shape) -> Dims:
    """Dims from an llmplan.model.arch.Shape (decoder-only); MoE counts the experts a token uses."""
    a = shape.heads
    hd = shape.attn_width // a
    kv = shape.n_kv_heads
    gated = shape.mlp in ("swiglu", "geglu")
    moe = dict(experts=shape.experts, top_k=shape.experts_per_token, shared=shape.shared_experts,
               i_expert=shape.d_expert, moe_layers=max(0, shape.layers - shape.dense_layers)) if shape.experts else {}
    return Dims(shape.layers, shape.d_model, a, kv, hd, shape.d_ffn, shape.vocab, gated, shape.norm == "rmsnorm", **moe)


def value_bytes(precision: str, compute_bytes: int) -> tuple[int, int, bool]:
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
                attention: str = "flash", recompute: str = "none", tp: int = 1, sp: bool = False,
                cp: int = 1, moe: bool = False, fused_norm: bool = False, fused_mlp: bool | None = None) -> list[Saved]:
    """Tensors one decoder layer keeps for backward (HF LlamaDecoderLayer, PyTorch autograd).

    `fused_norm`: the stack's element-wise kernels are fused (norms and SwiGLU one kernel each: TE, Apex,
    Megatron-Core's fusions, a compiled graph), which saves fewer intermediates (see the norm and _ffn_saved);
    `fused_mlp` sets the SwiGLU apart where only the norms are fused (torchtitan's fused_rmsnorm); None: as the norms.

    `tp` divides what Megatron's tensor parallelism splits (heads and FFN columns); the norms and the
    inputs of the column-parallel matmuls stay whole unless `sp` (sequence parallelism, Korthikanti et al.
    2022 §4.2.2: those are split over the sequence too, and re-gathered in backward). `cp` (context
    parallelism, ring attention) gives each GPU s/cp of the tokens; its queries still meet all s keys.
    `attention` is the kernel that runs (see `sdpa_backend`); `moe` counts a routed-expert FFN.
    """
    T = b * s // cp
    r, c, amp = value_bytes(precision, compute_bytes)
    whole = tp if sp else 1  # what stays whole under plain TP is split by SP
    if recompute == "full":
        # torch.utils.checkpoint keeps only each layer's input (the residual stream).
        return [Saved("layer input (checkpoint)", T * d.h * r // whole, "gradient checkpointing keeps the block's input only and reruns the block in backward")]
    if recompute == "op":
        # torchtitan's op-level selective checkpoint (torchtitan/distributed/activation_checkpoint.py, v0.1.0): the
        # block's input, and the outputs of aten.mm and the SDPA kernel, except every second mm (wk, wo, w3 in
        # forward order wq wk wv wo w1 w3 w2); everything else is recomputed from the block input in backward.
        kv = d.kv * d.hd // tp
        i = (d.i_expert * (d.top_k + d.shared) if moe and d.experts else d.i) // tp
        return [Saved("layer input (checkpoint)", T * d.h * r // whole, "the checkpointed block's input"),
                Saved("wq, wv outputs", T * (d.a * d.hd // tp + kv) * c, "mm outputs the op policy saves (odd-numbered mm)"),
                Saved("attention output + logsumexp", T * d.a * d.hd // tp * c + T * d.a // tp * 4, "the SDPA kernel's outputs are saved"),
                Saved("w1 output", T * i * c, "mm output saved (odd-numbered mm)"),
                Saved("w2 output", T * d.h * c // whole, "mm output saved (odd-numbered mm)")]
    casts = 3 if amp else 1  # autocast casts the fp32 input once per consuming linear (no cache for non-leaf tensors)
    mlp_casts = (2 if d.gated else 1) if amp else 1
    out: list[Saved] = []
    norm = "RMSNorm" if d.rmsnorm else "LayerNorm"
    kernel = "flash" if recompute == "selective" and attention in ("math", "eager") else attention
    for which in ("attention", "MLP"):
        if fused_norm or not d.rmsnorm:
            # one norm kernel (F.layer_norm, TE LayerNormLinear, Apex FusedRMSNorm): it saves its input and the
            # per-token mean and 1/std in fp32 (aten native_layer_norm); its output is the next linear's saved input
            out.append(Saved(f"{which} {norm} input", T * d.h * r // whole, "the fused norm kernel saves its input for its backward"))
            out.append(Saved(f"{which} {norm} mean, 1/std", T * 8 // whole, "per-token statistics, fp32"))
        else:
            out.append(Saved(f"{which} {norm} input, fp32", T * d.h * 4 // whole, "the norm upcasts to fp32 and pow/mul save that fp32 tensor (the fp32 residual itself under fp32/amp, a copy otherwise)"))
            out.append(Saved(f"{which} {norm} normalised x", T * d.h * r // whole, "weight · x̂ saves x̂ (cast back to the input dtype) for the weight's gradient"))
            out.append(Saved(f"{which} {norm} 1/rms", T * 4 // whole, "rsqrt output, one fp32 per token"))
        if which == "attention":
            out.append(Saved("q/k/v projection input" + (" ×3 casts" if amp else ""), casts * T * d.h * (c if amp else r) // whole,
                             "each linear saves its input; under autocast q, k and v each get their own low-precision copy"))
            out += _attention_saved(d, b, s, c, kernel, tp, cp)
        elif moe and d.experts:
            out += _moe_saved(d, T, c, r, amp, tp, whole)
        else:
            out.append(Saved("MLP input" + (f" ×{mlp_casts} casts" if amp else ""), mlp_casts * T * d.h * (c if amp else r) // whole,
                             "gate and up projections save their input (one autocast copy each under amp)"))
            out += _ffn_saved(T, d.i // tp, c, d.gated, "", fused_norm if fused_mlp is None else fused_mlp)
    return out


def _ffn_saved(tokens: int, width: int, c: int, gated: bool, label: str, fused: bool = False) -> list[Saved]:
    """The FFN's intermediates over `tokens` rows of `width` (one expert, the shared experts or a dense MLP).
    `fused`: one SwiGLU kernel (Megatron-Core bias_swiglu_impl, a compiled graph) saves its input, gate and up
    together, and the down projection saves its output; act(gate) is recomputed in its backward."""
    n = tokens * width * c
    if gated and fused:
        return [Saved(f"{label}gate and up projection outputs", 2 * n, "the fused SwiGLU kernel saves its input"),
                Saved(f"{label}act(gate) · up", n, "down projection saves its input")]
    if gated:
        return [Saved(f"{label}gate projection output", n, "SiLU saves its input"),
                Saved(f"{label}act(gate)", n, "act(gate) · up saves both factors"),
                Saved(f"{label}up projection output", n, "act(gate) · up saves both factors"),
                Saved(f"{label}act(gate) · up", n, "down projection saves its input")]
    return [Saved(f"{label}fc1 output", n, "GeLU saves its input"), Saved(f"{label}activation output", n, "fc2 saves its input")]


def _moe_saved(d: Dims, T: int, c: int, r: int, amp: bool, tp: int, whole: int) -> list[Saved]:
    """A routed MoE FFN (Mixtral/DeepSeek style, experts' FFNs tensor-parallel like the dense one).

    Router: logits and their fp32 softmax (T·E), the top-k weights. Each token's hidden state is copied
    once per chosen expert (the dispatch gather, or the all-to-all receive buffer under expert
    parallelism: balanced routing leaves T·k rows per GPU either way), each expert keeps its FFN
    intermediates for its rows, and the weighted combine keeps the experts' outputs. Shared experts are
    an ordinary FFN over all T tokens.
    """
    k, E = d.top_k, d.experts
    rows = T * k
    casts = (2 if d.gated else 1) if amp else 1
    out = [
        Saved("router input" + (" (autocast copy)" if amp else ""), T * d.h * (c if amp else r) // whole, "the router linear saves its input"),
        Saved("router probabilities, fp32", T * E * 4, "softmax over the experts in fp32 saves its output"),
        Saved("top-k routing weights", T * k * (4 + 8) + T * 4, "topk's indices (int64), the renormalisation's weights and their sum (fp32)"),
        Saved("token and slot indices", rows * 8 * 2, "torch.where's rows and slots (int64), saved by the gather, the weight lookup and index_add_"),
        Saved("dispatched tokens" + (f" ×{casts} casts" if amp else ""), casts * rows * d.h * (c if amp else r),
              "each token's hidden state copied to each of its k experts (the all-to-all buffer under --ep); under autocast the gate and up projections each cast it"),
        Saved("routing weight per row", rows * (4 if amp else c), "the weighted combine saves each row's weight"),
    ]
    out += _ffn_saved(rows, d.i_expert // tp, c, d.gated, "experts' ")
    out.append(Saved("experts' outputs", rows * d.h * c, "the combine multiplies each expert output by its routing weight, saving both"))
    out.append(Saved("weighted expert outputs", rows * d.h * (4 if amp else c),
                     "index_add_ saves its source (its derivative expands to the source: derivatives.yaml); fp32 under amp (fp32 weights)"))
    if d.shared:
        out.append(Saved("shared-expert input", T * d.h * (c if amp else r) // whole, "the shared experts' projections save their input"))
        out += _ffn_saved(T, d.shared * d.i_expert // tp, c, d.gated, "shared experts' ")
    return out


def _attention_saved(d: Dims, b: int, s: int, c: int, kernel: str, tp: int, cp: int) -> list[Saved]:
    """What the attention core keeps, kernel by kernel (q/k/v after rotary, in the compute dtype)."""
    T = b * s // cp
    q = T * d.a * d.hd // tp
    kvh = T * d.kv * d.hd // tp
    rep = T * d.a * d.hd // tp  # K or V repeated to every query head
    scores = b * (d.a // tp) * (s // cp) * s  # this GPU's queries against every key
    if kernel in ("flash", "mem-efficient"):
        # _scaled_dot_product_{flash,efficient}_attention save q, k, v, the output and the fp32 logsumexp;
        # the s² scores are recomputed in backward. Flash takes GQA natively (enable_gqa); when the
        # memory-efficient kernel is forced on a GQA model, transformers repeats K and V first (repeat_kv).
        k_saved = kvh if kernel == "flash" or d.kv == d.a else rep
        return [Saved("q (rotary applied)", q * c, "the attention kernel saves Q (its own low-precision cast of the fp32 rotary output under amp)"),
                Saved("k (rotary applied)", k_saved * c, "the kernel saves K" + (" at the KV-head count" if k_saved == kvh else ", repeated to every head")),
                Saved("v", k_saved * c, "the kernel saves V"),
                Saved("attention output", q * c, "saved by the kernel for backward and reused as o_proj's input"),
                Saved("logsumexp", T * d.a // tp * 4, "flash/efficient kernels keep one fp32 per head and token")]
    if kernel == "math":
        # at::_scaled_dot_product_attention_math (aten/src/ATen/native/transformers/attention.cpp): q and k
        # each scaled by sqrt(scale) (new tensors), K and V repeat_interleave'd to every head under GQA,
        # softmax output saved for its backward and for P·V, then o_proj saves the transposed copy.
        return [Saved("q · sqrt(scale)", q * c, "the math kernel scales q (a new tensor) and Q·Kᵀ saves it"),
                Saved("k · sqrt(scale), every head", rep * c, "scaled K (repeated to every head under GQA), saved by Q·Kᵀ"),
                Saved("attention probabilities", scores * c, "_safe_softmax saves its b·a·s² output, which P·V also saves"),
                Saved("v, every head", (rep if d.kv != d.a else kvh) * c, "P·V saves V (repeat_interleave'd under GQA)"),
                Saved("attention output (contiguous)", q * c, "transpose(1,2).contiguous() copy saved by o_proj")]
    # HF eager_attention_forward: repeat_kv, Q·Kᵀ·scale, softmax(dtype=fp32).to(dtype), P·V.
    out = [Saved("q (rotary applied)", q * c, "Q·Kᵀ saves Q (autocast copy of the fp32 rotary output under amp)"),
           Saved("k (rotary, repeated to all heads)", rep * c, "Q·Kᵀ saves K after repeat_kv copies the KV heads for GQA"),
           Saved("attention probabilities, fp32", scores * 4, "softmax(dtype=fp32) saves its a·s² output")]
    if c != 4:
        out.append(Saved("attention probabilities, cast", scores * c, "probs.to(dtype) then P·V saves the low-precision copy"))
    out += [Saved("v (repeated to all heads)", rep * c, "P·V saves V after repeat_kv"),
            Saved("attention output (contiguous)", q * c, "transpose(1,2).contiguous() copy saved by o_proj")]
    return out


def head_saved(d: Dims, b: int, s: int, precision: str = "amp", compute_bytes: int = 2, tp: int = 1,
               sp: bool = False, cp: int = 1) -> list[Saved]:
    """Final norm, lm_head, logits and the loss (HF ForCausalLMLoss: logits.float() then cross-entropy)."""
    T = b * s // cp
    r, c, amp = value_bytes(precision, compute_bytes)
    whole = tp if sp else 1
    return [
        Saved("token ids", T * 8, "the embedding lookup saves its int64 indices"),
        Saved("rotary cos/sin", 2 * (s // cp) * d.hd * r, "computed once per forward in the hidden dtype (fp32 under amp) and saved by every layer's rotary products"),
        Saved("final RMSNorm input, fp32", T * d.h * 4 // whole, "as in every layer"),
        Saved("final RMSNorm normalised x", T * d.h * r // whole, "as in every layer"),
        Saved("lm_head input", T * d.h * (c if amp else r) // whole, "lm_head saves its input (an autocast copy under amp)"),
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
