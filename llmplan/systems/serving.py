"""Serving a decoder: prefill and decode time, throughput, KV-cache capacity and cost per token.

A roofline per phase (Williams, Waterman & Patterson 2009, "Roofline"), as in Pope et al. 2022
("Efficiently Scaling Transformer Inference", §2) and kipp.ly's "Transformer Inference Arithmetic":

- prefill (time to first token) of b prompts of n tokens: the larger of its FLOPs (2 per weight per
  token, plus causal attention) at the achievable matmul rate and the bytes it must move (the weights
  once, the KV cache it writes) at HBM bandwidth, plus the tensor-parallel all-reduces;
- one decode step at batch b and KV length t: the larger of the bytes read (every weight the step
  multiplies by, once, and b·t cached tokens of K and V) at HBM bandwidth and its FLOPs at the
  achievable matmul rate, plus two all-reduces per layer under tensor parallelism (Megatron-LM,
  Shoeybi et al. 2019 §3). So no step is faster than reading its weights once at the bandwidth.

Static batching, as engines' fixed-batch benchmarks run it (TensorRT-LLM gptSessionBenchmark): the b
prompts are prefilled together (which yields each sequence's first token), then m - 1 decode steps
at KV lengths n+1 ... n+m-1. Left out: engine overheads between kernels (launches, sampling,
scheduling), kernel efficiency below the roofline at small shapes, continuous-batching interleaving,
speculative decoding, prefix caching. Pure functions; no printing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from llmplan.model import arch
from llmplan.model.propose import propose
from llmplan.systems.memory import allocator
from llmplan.systems.memory import states
from llmplan.systems.collectives import all_reduce_seconds
from llmplan.systems.gpu import GPU
from llmplan.errors import InputError

# Share of GPU memory the engine may use: vLLM's default gpu_memory_utilization (vllm/engine/arg_utils.py,
# EngineArgs.gpu_memory_utilization = 0.90); TensorRT-LLM's kv_cache_free_gpu_mem_fraction is also 0.9.
DEFAULT_MEMORY_FRACTION = 0.9
# Bytes of one activation value sent in the TP all-reduce (16-bit activations).
ACTIVATION_BYTES = 2


# ---------------------------------------------------------------------------- hardware

def compute_dtype(weight_dtype: str, gpu: Any) -> str:
    """The dtype the matmuls run in: fp8 weights on a GPU with fp8 tensor cores run fp8 x fp8
    (TensorRT-LLM and vLLM FP8 on Hopper); other quantised formats are weight-only, dequantised to
    16-bit for the matmul (GPTQ/AWQ/bitsandbytes kernels); fp16/fp32 run as stored, the rest bf16."""
    if weight_dtype == "fp8" and gpu.get("peak_fp8") is not None:
        return "fp8"
    if weight_dtype in ("fp16", "fp32"):
        return weight_dtype
    return "bf16"


def hardware_from_gpu(gpu: Any, weight_dtype: str, matmul_efficiency: float | None = None,
                      gpus_per_node: int | None = None) -> GPU:
    """The GPU (llmplan.systems.gpu, one record for training and serving: peak of the compute dtype, HBM bandwidth,
    memory, links, achievable matmul fraction) of a preset, for serving weights in weight_dtype."""
    return GPU.from_preset(gpu, compute_dtype(weight_dtype, gpu), gpus_per_node=gpus_per_node,
                           matmul_efficiency=matmul_efficiency)


def achievable_flops(hw: GPU) -> float:
    """Dense peak of the compute dtype x the measured large-matmul efficiency (llmplan.systems.gpu)."""
    return hw.peak_flops_per_second * hw.matmul_efficiency


# ---------------------------------------------------------------------------- the model served

@dataclass(frozen=True)
class Served:
    """A decoder as served: shape, exact parameters, weight and KV formats, tensor parallelism."""

    shape: arch.Shape
    params: int
    dtype: str = "bf16"
    kv_dtype: str = "bf16"
    tp: int = 1
    group_size: int = 128

    def __post_init__(self) -> None:
        if self.shape.family != "decoder":
            raise InputError(f"serving is modelled for decoder-only models, not {self.shape.family} ones; give a decoder (--preset llama-3-8b)")
        if self.tp < 1:
            raise InputError(f"--tp must be a positive whole number, not {self.tp}")
        if not self.shape.is_mla and self.shape.heads % self.tp:
            raise InputError(f"--tp {self.tp} does not divide the {self.shape.heads} attention heads; use a divisor of {self.shape.heads}")


def weights_bytes_per_gpu(m: Served) -> float:
    """Stored weights on one GPU: allocator.weights_bytes split evenly over tp (Megatron-style)."""
    return allocator.weights_bytes(m.shape, m.params, m.dtype, m.group_size) / m.tp


def kv_bytes_per_token_per_gpu(m: Served) -> float:
    """KV-cache bytes per token on one GPU. KV heads are split over TP ranks (Megatron-LM §3), and
    replicated when tp exceeds them (vLLM, TensorRT-LLM), so the split is min(tp, n_kv); MLA's
    latent is replicated on every rank."""
    total = arch.kv_cache_bytes_per_token(m.shape, states.dtype_bytes(m.kv_dtype))
    if m.shape.is_mla:
        return total
    return total / min(m.tp, m.shape.n_kv_heads)


def embedding_bytes_per_gpu(m: Served) -> float:
    """The input embedding table on one GPU: a lookup reads b rows of it, not the table (16-bit in
    quantised formats, as allocator.weights_bytes counts it). Zero when tied to the output head."""
    if m.shape.tied_embeddings:
        return 0.0
    b = 2 if m.dtype in states.QUANTISED else states.dtype_bytes(m.dtype)
    return m.shape.vocab * m.shape.d_model * b / m.tp


def experts_touched(experts: int, per_token: int, batch: int) -> float:
    """Expected distinct routed experts of one layer used by a batch of tokens, uniform routing:
    E·(1 - (1 - k/E)^b) (each expert is missed by a token with probability 1 - k/E)."""
    return experts * (1 - (1 - per_token / experts) ** batch)


def weights_read_bytes(m: Served, tokens: int) -> float:
    """Weight bytes one forward pass over `tokens` tokens reads on one GPU: every matrix, the output
    head included, except the input embedding table; for MoE only the experts the tokens route to."""
    w = weights_bytes_per_gpu(m) - embedding_bytes_per_gpu(m)
    s = m.shape
    if not s.is_moe:
        return w
    moe_layers = s.layers - s.dense_layers
    expert = arch.mlp_params(s, s.d_expert)
    unused = moe_layers * expert * (s.experts - experts_touched(s.experts, s.experts_per_token, tokens))
    return w * (1 - unused / m.params)


# ---------------------------------------------------------------------------- FLOPs

def weight_flops_per_token(s: arch.Shape) -> float:
    """Forward matmul FLOPs per token, 2 per weight multiplied (Kaplan et al. 2020 Table 1), without
    the output head and attention scores: arch.flops_per_token's forward matmul count (a third of its
    training count) less those two terms."""
    f = arch.flops_per_token(s, 1)
    return f["matmul"] / 3 - 2 * s.d_model * s.vocab - s.layers * arch.attention_score_flops(s, 1)


def logits_flops(s: arch.Shape) -> float:
    """The output head for one token: 2·d·V (Kaplan et al. 2020 Table 1, 'De-embed')."""
    return 2 * s.d_model * s.vocab


def prefill_flops(s: arch.Shape, batch: int, n: int) -> float:
    """FLOPs to prefill b prompts of n tokens: 2·weights per token, causal attention over (n+1)/2
    keys on average (QK^T and A·V, Kaplan Table 1), and the output head for the last token only
    (engines and `generate` compute logits at the last position)."""
    per_seq = n * weight_flops_per_token(s) + s.layers * n * arch.attention_score_flops(s, n + 1, causal=True) + logits_flops(s)
    return batch * per_seq


def decode_flops(s: arch.Shape, batch: int, t: int) -> float:
    """FLOPs of one decode step: b tokens, each attending to t keys (Kaplan Table 1), with logits."""
    return batch * (weight_flops_per_token(s) + logits_flops(s) + s.layers * arch.attention_score_flops(s, t))


# ---------------------------------------------------------------------------- the two phases

@dataclass(frozen=True)
class Phase:
    seconds: float
    compute_seconds: float
    memory_seconds: float
    comm_seconds: float
    flops: float
    bytes_read: float

    @property
    def bound(self) -> str:
        return "compute" if self.compute_seconds >= self.memory_seconds else "memory"


def roofline_seconds(flops: float, nbytes: float, hw: GPU) -> tuple[float, float]:
    """(compute, memory) seconds of one GPU's share: FLOPs at the achievable rate, bytes at HBM bandwidth."""
    return flops / achievable_flops(hw), nbytes / hw.bandwidth


def tp_comm_seconds(m: Served, tokens: int, hw: GPU) -> float:
    """Two all-reduces per layer of tokens·d activations (after attention and after the MLP;
    Shoeybi et al. 2019 §3, Fig. 3), each by llmplan.systems.collectives' NCCL alpha-beta model."""
    if m.tp == 1:
        return 0.0
    hw.require_links(m.tp)
    return 2 * m.shape.layers * all_reduce_seconds(tokens * m.shape.d_model * ACTIVATION_BYTES, m.tp, m.tp, hw)


def prefill(m: Served, hw: GPU, batch: int, n: int) -> Phase:
    """Prefill of b prompts of n tokens on tp GPUs (time to the first output token)."""
    flops = prefill_flops(m.shape, batch, n)
    nbytes = weights_read_bytes(m, batch * n) + batch * n * kv_bytes_per_token_per_gpu(m)
    c, mem = roofline_seconds(flops / m.tp, nbytes, hw)
    comm = tp_comm_seconds(m, batch * n, hw)
    return Phase(max(c, mem) + comm, c, mem, comm, flops, nbytes)


def decode_step(m: Served, hw: GPU, batch: int, t: int) -> Phase:
    """One decode step at batch b, each sequence with t tokens of KV cache."""
    flops = decode_flops(m.shape, batch, t)
    nbytes = weights_read_bytes(m, batch) + batch * t * kv_bytes_per_token_per_gpu(m)
    c, mem = roofline_seconds(flops / m.tp, nbytes, hw)
    comm = tp_comm_seconds(m, batch, hw)
    return Phase(max(c, mem) + comm, c, mem, comm, flops, nbytes)


def sum_max_linear(a: float, b: float, c: float, d: float, t0: int, t1: int) -> float:
    """Σ over integers t0 <= t <= t1 of max(a + b·t, c + d·t), exactly: two lines cross at most once."""
    if t1 < t0:
        return 0.0

    def line(p: float, q: float, lo: int, hi: int) -> float:
        k = hi - lo + 1
        return k * p + q * (lo + hi) * k / 2 if k > 0 else 0.0

    first_at_t0 = a + b * t0 >= c + d * t0
    first_at_t1 = a + b * t1 >= c + d * t1
    if first_at_t0 == first_at_t1:
        return line(a, b, t0, t1) if first_at_t0 else line(c, d, t0, t1)
    cut = min(max(math.floor((c - a) / (b - d)), t0), t1 - 1)  # the last t where the t0 winner still wins
    lead, rest = ((a, b), (c, d)) if first_at_t0 else ((c, d), (a, b))
    return line(*lead, t0, cut) + line(*rest, cut + 1, t1)


def decode_total_seconds(m: Served, hw: GPU, batch: int, n: int, steps: int) -> float:
    """Σ of the decode steps at KV lengths n+1 ... n+steps (each step's time is linear in t in each regime)."""
    if steps <= 0:
        return 0.0
    p0, p1 = decode_step(m, hw, batch, 0), decode_step(m, hw, batch, 1)
    a, b = p0.memory_seconds, p1.memory_seconds - p0.memory_seconds
    c, d = p0.compute_seconds, p1.compute_seconds - p0.compute_seconds
    return sum_max_linear(a, b, c, d, n + 1, n + steps) + steps * p0.comm_seconds


# ---------------------------------------------------------------------------- memory

def reserve_bytes() -> float:
    """Memory not available to weights or KV: the CUDA context and the cuBLAS workspace (memory.py)."""
    return allocator.CONTEXT_BYTES + allocator.CUBLAS_WORKSPACE


def kv_capacity_tokens(m: Served, hw: GPU, memory_fraction: float = DEFAULT_MEMORY_FRACTION) -> int:
    """Tokens of KV cache that fit on each GPU: floor((fraction · memory - weights - reserve) / KV bytes per token)."""
    free = memory_fraction * hw.memory_bytes - weights_bytes_per_gpu(m) - reserve_bytes()
    per_token = kv_bytes_per_token_per_gpu(m)
    if free <= 0 or per_token <= 0:
        return 0
    return math.floor(free / per_token)


def max_batch(m: Served, hw: GPU, context: int, memory_fraction: float = DEFAULT_MEMORY_FRACTION) -> int:
    """The most sequences of `context` tokens (input + output) whose KV cache fits: capacity // context."""
    return kv_capacity_tokens(m, hw, memory_fraction) // context


# ---------------------------------------------------------------------------- a workload

def cost_per_million(gpu_seconds: float, tokens: float, price_per_gpu_hour: float) -> float:
    """USD per million tokens: GPU-seconds per token x 1e6 x price / 3600."""
    return gpu_seconds / tokens * 1e6 * price_per_gpu_hour / 3600.0


def serve(m: Served, hw: GPU, batch: int, n: int, out: int, price: float | None = None,
          memory_fraction: float = DEFAULT_MEMORY_FRACTION) -> dict[str, Any]:
    """One row: b sequences of n input and `out` output tokens on tp GPUs (static batch)."""
    if batch < 1 or n < 1 or out < 1:
        raise InputError("batch, input and output tokens must be positive whole numbers")
    pre = prefill(m, hw, batch, n)
    steps = out - 1  # the prefill yields the first output token
    decode_seconds = decode_total_seconds(m, hw, batch, n, steps)
    mean_t = n + (steps + 1) / 2 if steps else n + 1  # the mean KV length of a decode step
    mean_step = decode_step(m, hw, batch, round(mean_t))
    tpot = decode_seconds / steps if steps else decode_step(m, hw, batch, n + 1).seconds
    latency = pre.seconds + decode_seconds
    capacity = kv_capacity_tokens(m, hw, memory_fraction)
    biggest = capacity // (n + out)
    floor = weights_read_bytes(m, batch) / hw.bandwidth
    row: dict[str, Any] = {
        "gpu": hw.gpu,
        "tp": m.tp,
        "dtype": m.dtype,
        "kv_dtype": m.kv_dtype,
        "compute_dtype": hw.dtype,
        "batch": batch,
        "input_tokens": n,
        "output_tokens": out,
        "prefill_seconds": pre.seconds,
        "prefill_bound": pre.bound,
        "time_per_output_token_seconds": tpot,
        "decode_bound": mean_step.bound,
        "decode_seconds": decode_seconds,
        "latency_seconds": latency,
        "output_tokens_per_second_per_sequence": 1 / tpot,
        "output_tokens_per_second": batch * out / latency,
        "output_tokens_per_second_per_gpu": batch * out / latency / m.tp,
        "requests_per_second": batch / latency,
        "weights_bytes": math.ceil(weights_bytes_per_gpu(m)),  # per GPU; whole bytes (a shard's remainder rounds up)
        "kv_cache_bytes": math.ceil(batch * (n + out) * kv_bytes_per_token_per_gpu(m)),
        "kv_cache_bytes_per_token": math.ceil(kv_bytes_per_token_per_gpu(m)),
        "kv_capacity_tokens": capacity,
        "max_batch": biggest,
        "fits": batch <= biggest,
        "weights_floor_seconds": floor,
        "peak_flops_per_second": hw.peak_flops_per_second,
        "bandwidth_bytes_per_second": hw.bandwidth,
        "matmul_efficiency": hw.matmul_efficiency,
        "prefill_flops": pre.flops,
        "decode_step_flops": mean_step.flops,
        "decode_comm_seconds": mean_step.comm_seconds,
    }
    if price is not None:
        row["price_usd_per_gpu_hour"] = price
        row["cost_usd_per_million_input_tokens"] = cost_per_million(pre.seconds * m.tp, batch * n, price)
        row["cost_usd_per_million_output_tokens"] = cost_per_million(
            (decode_seconds if steps else tpot) * m.tp, batch * max(steps, 1), price)
        row["cost_usd_per_request"] = latency * m.tp * price / 3600.0 / batch
    return row


def gpu_seconds_per_token(m: Served, hw: GPU, batch: int, n: int, out: int) -> float:
    """GPU-seconds per token processed (input + output) for this workload: tp · latency / (b·(n+out))."""
    pre = prefill(m, hw, batch, n)
    latency = pre.seconds + decode_total_seconds(m, hw, batch, n, out - 1)
    return m.tp * latency / (batch * (n + out))


# ---------------------------------------------------------------------------- serving a size

def served_at_size(params: float, hw: GPU, batch: int, n: int, out: int, dtype: str = "bf16",
                   kv_dtype: str | None = None, max_tp: int = 64, kv_heads: int = 8) -> Served:
    """A model of about `params` parameters as it would be served: the nearest LLaMA-family shape
    (llmplan.model.propose) with grouped-query attention of `kv_heads` KV heads (8 in Llama 2 70B, Llama 3 and
    Mistral 7B; the largest divisor of the heads not above it), on the fewest tensor-parallel GPUs (a
    power of two dividing its heads) whose KV cache holds `batch` sequences of n + out tokens."""
    (s,) = propose(params, n=1)
    groups = max(g for g in range(1, min(kv_heads, s.heads) + 1) if s.heads % g == 0)
    s = arch.with_changes(s, kv_heads=groups)
    kv = kv_dtype or ("fp32" if dtype == "fp32" else "fp16" if dtype == "fp16" else "bf16")
    tp = 1
    while tp <= max_tp:
        if s.heads % tp == 0:
            m = Served(s, arch.params(s), dtype, kv, tp)
            if max_batch(m, hw, n + out) >= batch:
                return m
        tp *= 2
    raise InputError(f"a {params:.3g}-parameter model does not fit batch {batch} of {n + out}-token sequences on {max_tp} {hw.gpu} GPUs; lower --serve-batch")
