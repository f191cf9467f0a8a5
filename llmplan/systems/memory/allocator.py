"""What the GPU holds for a model besides activations and optimizer states: its parameter tensors (counts,
stored bytes, the order HF LLaMA allocates them), the CUDA caching allocator's rounding of them, the cuBLAS
workspace and the CUDA context.

Checked against the H100 measurements in tests/data/gpu_memory_calibration.jsonl. Pure functions, no printing.
"""

from __future__ import annotations

import functools
import math
from dataclasses import replace

from llmplan.systems.memory.states import QUANTISED, dtype_bytes, quantised_bits_per_weight

# cuBLAS workspace that PyTorch allocates through its caching allocator on Hopper (CUBLAS_WORKSPACE_CONFIG
# default ":4096:8" = 32 MiB), one per cuBLAS handle: the forward thread's, and in training also the
# autograd engine's backward thread's. The calibration file shows both: step_base_bytes - states_bytes
# is 32 MiB in the first training case (the forward workspace predates it) and 64 MiB in the others.
CUBLAS_WORKSPACE = 32 * 2**20
# Default overhead: CUDA context measured as device_used - peak_reserved = 0.79-0.81 GB on the H100
# (calibration file), plus the caching allocator's reserve above its allocations (peak_reserved /
# peak_step up to 1.045 there), rounded to 5%.
CONTEXT_BYTES = 0.8e9
ALLOCATOR_MARGIN = 0.05


@functools.lru_cache(maxsize=1024)
def linear_params_per_layer(shape) -> int:
    """Weights of the matrices in one (dense) layer: attention projections + MLP."""
    from llmplan.model import arch

    return arch.attention_params(shape) + arch.mlp_params(shape, shape.d_ffn)


def lm_head_params(shape) -> int:
    return 0 if shape.tied_embeddings else shape.vocab * shape.d_model


def lora_params(shape, rank: int) -> int:
    """Trainable LoRA parameters r·(d_in + d_out) per adapted matrix (Hu et al. 2021), all linears of each layer."""
    d, a, kv, i = shape.d_model, shape.attn_width, shape.kv_width, shape.d_ffn
    per_layer = rank * ((d + a) + 2 * (d + kv) + (a + d))
    if shape.mlp in ("swiglu", "geglu"):
        per_layer += rank * 3 * (d + i)
    else:
        per_layer += rank * 2 * (d + i)
    return shape.layers * per_layer


def weights_bytes(shape, params: float, dtype: str, group_size: int = 128) -> float:
    """Stored weights, as PyTorch's allocator reports them.

    Quantised formats: the layers' matrices at their bits (scales included); embeddings, lm_head and
    norms stay 16-bit, as GPTQ/AWQ/bitsandbytes leave them (Frantar et al. 2022; Dettmers et al. 2023).
    Unquantised with a dense LLaMA-style shape: every parameter tensor (and rotary's two fp32
    inv_freq buffers) allocated in module order through the CUDA caching allocator (`allocator_bytes`),
    which is what `torch.cuda.memory_allocated()` shows after building the model. Otherwise params × bytes.
    """
    if dtype not in QUANTISED:
        if shape is None or not _hf_llama_order(shape):
            return params * dtype_bytes(dtype)
        return _allocated_weights(shape, dtype)
    if shape is None:
        return params * quantised_bits_per_weight(dtype, group_size) / 8
    from llmplan.model import arch

    matrices = arch.non_embedding_params(shape)  # the layers (their tiny norms counted as quantised too)
    rest = params - matrices
    return matrices * quantised_bits_per_weight(dtype, group_size) / 8 + rest * 2


# Beyond this many layers the allocator is not simulated tensor by tensor (callers use params × bytes;
# the allocator's rounding is then a negligible share): a list per tensor of 1e9 layers would not fit.
MAX_TENSOR_LIST_LAYERS = 10_000


def parameter_tensor_bytes(shape, nbytes: float) -> list[float] | None:
    """Byte size of each tensor of a dense decoder, in the order HF LlamaForCausalLM creates them
    (embedding; per layer q, k, v, o, gate, up, down, two norms; final norm; rotary inv_freq and
    original_inv_freq in fp32; lm_head). None for shapes this order does not describe (MoE, MLA,
    biases, learned positions, non-decoders): callers then use params × bytes."""
    if shape.layers > MAX_TENSOR_LIST_LAYERS:  # one list entry per tensor: bounded memory (issue 15)
        return None
    if not _hf_llama_order(shape):
        return None
    from llmplan.model import arch

    d, a, kv, i = shape.d_model, shape.attn_width, shape.kv_width, shape.d_ffn
    norm = arch.norm_params(shape) * nbytes
    layer = [d * a * nbytes, d * kv * nbytes, d * kv * nbytes, a * d * nbytes]
    layer += [d * i * nbytes] * (3 if shape.mlp in ("swiglu", "geglu") else 2)
    layer += [norm, norm]
    sizes = [shape.vocab * d * nbytes] + layer * shape.layers + ([norm] if shape.has_final_norm else [])
    if shape.positions == "rotary":
        sizes += [shape.d_head // 2 * 4] * 2
    if not shape.tied_embeddings:
        sizes.append(shape.vocab * d * nbytes)
    return sizes


_EXACT_LAYERS = 512  # simulated tensor by tensor up to here; beyond, a 64-layer step is repeated
_STEP_LAYERS = 64


@functools.lru_cache(maxsize=256)
def _allocated_weights(shape, dtype: str) -> float:
    """allocator_bytes of the model's tensors, cached (the layout search asks for the same shape many
    times). Up to 512 layers every tensor is simulated; beyond, the block pattern repeats (with a period
    that divides 64 for power-of-two widths), so L layers cost the allocation of 448 + (L mod 64) layers
    plus one 64-layer step per further 64: no list of a billion layers' tensors is ever built."""
    nbytes = dtype_bytes(dtype)
    if shape.layers <= _EXACT_LAYERS:
        return allocator_bytes(parameter_tensor_bytes(shape, nbytes))
    base = _EXACT_LAYERS - _STEP_LAYERS + shape.layers % _STEP_LAYERS
    at = allocator_bytes(parameter_tensor_bytes(replace(shape, layers=base), nbytes))
    before = allocator_bytes(parameter_tensor_bytes(replace(shape, layers=base - _STEP_LAYERS), nbytes))
    return at + (shape.layers - base) // _STEP_LAYERS * (at - before)


def _hf_llama_order(shape) -> bool:
    """Whether `parameter_tensor_bytes` describes this shape (a dense LLaMA-style decoder)."""
    return not (shape.family != "decoder" or shape.is_moe or shape.is_mla or shape.bias or shape.has_qkv_bias
                or shape.positions not in ("rotary", "alibi", "relative") or shape.n_layer_norms != 2
                or shape.has_embedding_norm or shape.qk_norm or shape.head_bias or shape.has_mlp_bias
                or shape.has_attn_out_bias or not shape.norm_weights)


# PyTorch CUDA caching allocator constants (c10/cuda/CUDACachingAllocator.cpp): blocks are multiples of
# 512 B; requests up to 1 MiB come from 2 MiB segments (small pool), requests under 10 MiB from 20 MiB
# segments, larger ones from segments rounded up to 2 MiB; a free large block is split only when more
# than 1 MiB would remain, so a request that leaves less takes (and reports) the whole block.
_MIN_BLOCK, _SMALL_SIZE, _SMALL_BUFFER = 512, 2**20, 2 * 2**20
_MIN_LARGE_ALLOC, _ROUND_LARGE, _LARGE_BUFFER = 10 * 2**20, 2 * 2**20, 20 * 2**20


def allocator_bytes(sizes: list[float]) -> float:
    """`torch.cuda.memory_allocated()` after allocating these tensors, in order, in a fresh process.

    Best-fit reuse of free blocks within each pool, the segment sizes and the split rule above.
    """
    free: dict[str, list[int]] = {"small": [], "large": []}
    allocated = 0
    for request in sizes:
        n = max(_MIN_BLOCK, _MIN_BLOCK * math.ceil(request / _MIN_BLOCK))
        pool = "small" if n <= _SMALL_SIZE else "large"
        fitting = [b for b in free[pool] if b >= n]
        if fitting:
            block = min(fitting)
            free[pool].remove(block)
        elif n <= _SMALL_SIZE:
            block = _SMALL_BUFFER
        elif n < _MIN_LARGE_ALLOC:
            block = _LARGE_BUFFER
        else:
            block = _ROUND_LARGE * math.ceil(n / _ROUND_LARGE)
        remaining = block - n
        split = remaining >= _MIN_BLOCK if pool == "small" else remaining > _SMALL_SIZE
        if split:
            free[pool].append(remaining)
            allocated += n
        else:
            allocated += block
    return allocated


@functools.lru_cache(maxsize=1024)
def expert_params(shape) -> int:
    """Routed experts' FFN weights (what expert parallelism splits): MoE layers × experts × one expert's FFN."""
    if shape is None or not getattr(shape, "experts", 0):
        return 0
    from llmplan.model import arch

    return max(0, shape.layers - shape.dense_layers) * shape.experts * arch.mlp_params(shape, shape.d_expert)


def largest_tensor_params(shape, tp: int = 1) -> float:
    """Values in the model's largest parameter tensor on one GPU (vocab-parallel embedding/head, column or
    row-parallel matrices): what the for-loop optimizer's per-tensor temporaries are sized by."""
    d = shape.d_model
    widths = [shape.vocab * d, d * shape.attn_width, d * shape.d_ffn]
    if getattr(shape, "experts", 0):
        widths.append(d * shape.d_expert)
    return max(widths) / tp
