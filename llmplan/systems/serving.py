"""Serving a decoder as an engine runs it: prefill and decode time, throughput, KV-cache capacity, cost.

Each phase is the sum of the kernels the engine (llmplan.systems.engines, presets/engines.toml) launches,
each at its measured rate (llmplan.systems.serving_kernels: kernel-level measurements only):

- one decode step at batch b and KV length t, per GPU: the GEMMs with M = b (a fixed latency per GEMM, then
  the weights streamed at the measured share of HBM bandwidth or the FLOPs at the small-M rate, whichever is
  longer; weight-only formats at their bits, their math capped by the kernel's dequantisation), the decode
  attention per layer (latency + b·t KV bytes at the kernel's measured share of bandwidth, each KV head read
  once per query head of its group where the kernel runs a thread block per query head), the small kernels
  (norms, rotary, activation, KV write) at their floor, two all-reduces per layer under tensor parallelism
  (Megatron-LM, Shoeybi et al. 2019 §3) at small-message latency; the host's launches when the step is not a
  CUDA graph (the step is the longer of the GPU's work and the host's issue), and the engine's per-step
  overhead where it is not hidden (the prefill is a step too);
- prefill of b prompts of n tokens: the GEMMs with M = b·n at the small-M rate, causal attention at the
  measured FlashAttention rate for prompt length n, the memory-bound elementwise kernels, the all-reduces,
  launched eagerly.

The roofline of each phase (Williams, Waterman & Patterson 2009; Pope et al. 2022 §2: FLOPs at the
achievable matmul rate, bytes at the full datasheet bandwidth) stays in every row as its own keys
(`*_roofline_seconds`, `weights_floor_seconds`), so no step is faster than reading its weights once.

Batching: the b requests are prefilled together, then decoded together (static, as fixed-batch benchmarks
run it); a continuous-batching engine runs a larger batch in waves of what it admits: at most its cap on
running sequences (vLLM max_num_seqs) and the sequences whose whole KV cache fits its pool. Expert
parallelism is counted as the engines modelled run it (SGLang 0.4 EPMoE, TensorRT-LLM 0.9.0): tokens
replicated, the layer's output all-reduced. Left out: what the L2 cache keeps between the query heads of a
group, speculative decoding, prefix caching, chunked prefill interleaved with decode, preemption, all-to-all
expert dispatch, request arrival processes. Pure functions; no printing.
"""

from __future__ import annotations

import math
from typing import Any

from llmplan.model import arch
from llmplan.model.propose import propose
from llmplan.records import record
from llmplan.systems.memory import allocator
from llmplan.systems.memory import states
from llmplan.systems import serving_kernels
from llmplan.systems.engines import DEFAULT_ENGINE, Engine
from llmplan.systems.gpu import GPU, HBM_EFFICIENCY, peak_flops
from llmplan.errors import InputError

# Bytes of one activation value sent in the TP all-reduce (16-bit activations).
ACTIVATION_BYTES = 2
# Hopper SM counts (H100 SXM5 132, H100 PCIe 114; NVIDIA H100 whitepaper): the FlashAttention curves measured on
# an H100 apply; other GPUs take FlashAttention-2's A100 curve (llmplan.systems.serving_kernels.PREFILL_ATTENTION).
HOPPER_SMS = (114, 132)


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


@record
class ServingGPU(GPU):
    """The GPU record (llmplan.systems.gpu) with what serving also needs: the 16-bit peak (attention runs
    in 16 bits whatever the weights), the intra-node link kind, the measured all-reduce bus bandwidth, and
    whether the FlashAttention curves measured on Hopper apply."""

    peak16: float = 0.0
    link: str = "nvlink"
    allreduce_busbw: float = 0.0
    hopper: bool = False


def link_busbw(gpu: Any, intra: float) -> float:
    """All-reduce bus bandwidth inside a node: the catalog's measured figure (intra_node_busbw) if any, else the
    link rate x the share nccl-tests reach (NVLink4 370 of 450 GB/s, PCIe Gen4 24 of 32; GTC24 S62129)."""
    if gpu.get("intra_node_busbw"):
        return float(gpu["intra_node_busbw"])
    share = 370.0 / 450.0 if gpu.get("intra_node_link") == "nvlink" else serving_kernels.PCIE_BUSBW_SHARE
    return share * intra


def hardware_from_gpu(gpu: Any, weight_dtype: str, matmul_efficiency: float | None = None,
                      gpus_per_node: int | None = None) -> ServingGPU:
    """The GPU (peak of the compute dtype, HBM bandwidth, memory, links, achievable matmul fraction) of a
    preset, for serving weights in weight_dtype, with serving's extras (ServingGPU)."""
    base = GPU.from_preset(gpu, compute_dtype(weight_dtype, gpu), gpus_per_node=gpus_per_node,
                           matmul_efficiency=matmul_efficiency, sustained=False)
    peak16, _ = peak_flops(gpu, "bf16")
    fields = {f: getattr(base, f) for f in GPU.__dataclass_fields__}
    # An engine sizes its KV pool from the memory the device reports (vLLM worker.py determine_num_available_blocks:
    # torch.cuda.mem_get_info()'s total x gpu_memory_utilization), where the catalog has it measured.
    fields["memory_bytes"] = float(gpu.get("device_memory_bytes") or base.memory_bytes)
    return ServingGPU(**fields, peak16=peak16, link=gpu.get("intra_node_link") or "nvlink",
                      allreduce_busbw=link_busbw(gpu, base.intra_node_bandwidth) if base.intra_node_bandwidth else 0.0,
                      hopper=(gpu.get("sms") in HOPPER_SMS and gpu.get("peak_fp8") is not None))


def achievable_flops(hw: GPU) -> float:
    """Dense peak of the compute dtype x the measured large-matmul efficiency (llmplan.systems.gpu)."""
    return hw.peak_flops_per_second * hw.matmul_efficiency


_DEFAULT: dict[str, Engine] = {}


def default_engine() -> Engine:
    """The default engine (engines.DEFAULT_ENGINE) from the shipped presets."""
    if DEFAULT_ENGINE not in _DEFAULT:
        from llmplan.presets import catalog

        _DEFAULT[DEFAULT_ENGINE] = Engine.from_preset(catalog(None).get("engines", DEFAULT_ENGINE))
    return _DEFAULT[DEFAULT_ENGINE]


# ---------------------------------------------------------------------------- the model served

@record
class Served:
    """A decoder as served: shape, exact parameters, weight and KV formats, tensor parallelism."""

    shape: arch.Shape
    params: int
    dtype: str = "bf16"
    kv_dtype: str = "bf16"
    tp: int = 1
    group_size: int = 128
    engine: Engine | None = None  # None: the default engine (engines.DEFAULT_ENGINE)
    ep: bool = False  # expert parallelism: each of the tp GPUs holds experts/tp whole experts (SGLang --enable-ep-moe)

    @property
    def engine_or_default(self) -> Engine:
        return self.engine if self.engine is not None else default_engine()

    def __post_init__(self) -> None:
        if self.shape.family != "decoder":
            raise InputError(f"serving is modelled for decoder-only models, not {self.shape.family} ones; give a decoder (--preset llama-3-8b)")
        if self.tp < 1:
            raise InputError(f"--tp must be a positive whole number, not {self.tp}")
        if not self.shape.is_mla and self.shape.heads % self.tp:
            raise InputError(f"--tp {self.tp} does not divide the {self.shape.heads} attention heads; use a divisor of {self.shape.heads}")
        if self.ep:
            if not self.shape.is_moe:
                raise InputError("--ep splits the experts of an MoE model over the GPUs; this model has no experts (give --experts or an MoE preset)")
            if self.tp < 2 or self.shape.experts % self.tp:
                raise InputError(f"--ep puts {self.shape.experts} experts on --tp {self.tp} GPUs; give a --tp of 2 or more that divides {self.shape.experts}")
            if not self.engine_or_default.expert_parallel:
                raise InputError(f"{self.engine_or_default.label} has no expert parallelism; use --engine sglang or trtllm, or leave out --ep")


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


def experts_touched_busiest(experts: int, per_token: int, batch: int, gpus: int) -> float:
    """Under expert parallelism, the distinct experts touched on the busiest of `gpus` GPUs, each holding
    experts/gpus of them: each local expert is reached with probability p = 1 - (1 - k/E)^b, so a GPU's count
    is Binomial(E/gpus, p); the expected maximum over the GPUs by the normal approximation,
    mean + sd·sqrt(2 ln gpus) (the Gaussian maximum bound), at most E/gpus."""
    n = experts / gpus
    p = 1 - (1 - per_token / experts) ** batch
    if gpus <= 1:
        return n * p
    return min(n, n * p + math.sqrt(n * p * (1 - p)) * math.sqrt(2 * math.log(gpus)))


def weights_read_bytes(m: Served, tokens: int) -> float:
    """Weight bytes one forward pass over `tokens` tokens reads on one GPU: every matrix, the output
    head included, except the input embedding table; for MoE only the experts the tokens route to (under
    expert parallelism, those on the busiest GPU, whole)."""
    w = weights_bytes_per_gpu(m) - embedding_bytes_per_gpu(m)
    s = m.shape
    if not s.is_moe:
        return w
    moe_layers = s.layers - s.dense_layers
    expert = arch.mlp_params(s, s.d_expert)
    if m.ep:
        share = moe_layers * s.experts * expert / m.params  # the routed experts' share of the weights
        local = s.experts / m.tp
        return w * (1 - share) + w * share * experts_touched_busiest(s.experts, s.experts_per_token, tokens, m.tp) / local
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

@record
class Phase:
    """One phase's time on one GPU, part by part, with its roofline kept apart."""

    seconds: float
    compute_seconds: float  # roofline: FLOPs at the achievable large-matmul rate
    memory_seconds: float  # roofline: bytes at the datasheet HBM bandwidth
    comm_seconds: float
    flops: float
    bytes_read: float
    gemm_seconds: float = 0.0
    attention_seconds: float = 0.0
    small_kernels_seconds: float = 0.0
    launch_seconds: float = 0.0  # host issue time beyond the GPU's work (no CUDA graph)
    overhead_seconds: float = 0.0  # the engine's per-step host time not hidden
    roofline_comm_seconds: float = 0.0  # the all-reduces' bytes at the datasheet link rate, no latency

    @property
    def bound(self) -> str:
        return "compute" if self.compute_seconds >= self.memory_seconds else "memory"

    @property
    def roofline_seconds(self) -> float:
        return max(self.compute_seconds, self.memory_seconds) + self.roofline_comm_seconds


def roofline_seconds(flops: float, nbytes: float, hw: GPU) -> tuple[float, float]:
    """(compute, memory) seconds of one GPU's share: FLOPs at the achievable rate, bytes at HBM bandwidth."""
    return flops / achievable_flops(hw), nbytes / hw.bandwidth


def tp_comm_seconds(m: Served, tokens: int, hw: GPU) -> float:
    """Two all-reduces per layer of tokens·d activations (after attention and after the MLP; Shoeybi et al.
    2019 §3, Fig. 3), each a ring all-reduce at NCCL's small-message latency and the link's measured bus
    bandwidth (llmplan.systems.serving_kernels.all_reduce_seconds)."""
    if m.tp == 1:
        return 0.0
    hw.require_links(m.tp)
    busbw = getattr(hw, "allreduce_busbw", 0.0) or hw.intra_link_efficiency * hw.intra_node_bandwidth
    return 2 * m.shape.layers * serving_kernels.all_reduce_seconds(tokens * m.shape.d_model * ACTIVATION_BYTES, m.tp, busbw,
                                                           getattr(hw, "link", "nvlink"))


def roofline_comm_seconds(m: Served, tokens: int, hw: GPU) -> float:
    """The all-reduces' lower bound: 2 per layer of tokens·d values, 2(n-1)/n of them over the datasheet link."""
    if m.tp == 1:
        return 0.0
    size = tokens * m.shape.d_model * ACTIVATION_BYTES
    return 2 * m.shape.layers * size * 2 * (m.tp - 1) / m.tp / hw.intra_node_bandwidth


def gemm_shapes(m: Served, tokens: int, head_rows: int) -> list[tuple[float, float, float, float, float]]:
    """(M, N, K, count, launches) of every GEMM of one forward over `tokens` tokens on one GPU: per dense layer the fused
    QKV, the output projection, the fused gate+up and the down projection (vLLM's QKVParallelLinear and
    MergedColumnParallelLinear; Megatron's column/row split over tp), per MoE layer the router and, for each
    expert the tokens reach, its two GEMMs with the tokens routed to it (vLLM fused_moe), and the output head
    over `head_rows` rows (the last position of each sequence in prefill)."""
    s, tp = m.shape, m.tp
    d = s.d_model
    inner = s.heads * s.d_head
    attention = arch.attention_params(s)
    qkv_n = max(attention / d - inner, 1) / tp
    gated = 2 if s.mlp in arch.GATED else 1
    moe_layers = s.layers - s.dense_layers if s.is_moe else 0
    dense_layers = s.layers - moe_layers
    L = s.layers
    out = [(tokens, qkv_n, d, L, L), (tokens, d, inner / tp, L, L)]
    if dense_layers:
        out += [(tokens, gated * s.d_ffn / tp, d, dense_layers, dense_layers), (tokens, d, s.d_ffn / tp, dense_layers, dense_layers)]
    if moe_layers:
        touched = experts_touched(s.experts, s.experts_per_token, tokens)
        rows = tokens * s.experts_per_token / touched
        split = 1 if m.ep else tp  # expert parallelism keeps each expert whole on one GPU
        here = experts_touched_busiest(s.experts, s.experts_per_token, tokens, tp) if m.ep else touched
        out += [(tokens, s.experts, d, moe_layers, moe_layers),
                (rows, gated * s.d_expert / split, d, moe_layers * here, moe_layers),
                (rows, d, s.d_expert / split, moe_layers * here, moe_layers)]
        if s.shared_experts:
            width = s.shared_experts * s.d_expert / tp
            out += [(tokens, gated * width, d, moe_layers, moe_layers), (tokens, d, width, moe_layers, moe_layers)]
    out.append((head_rows, s.vocab / tp, d, 1, 1))
    return out


def gemms_per_step(s: arch.Shape) -> int:
    """GEMM launches of one forward: 4 per dense layer, 5 per MoE layer (two attention GEMMs, the router and
    the two fused expert kernels, vLLM fused_moe), 2 more per MoE layer with shared experts, and the head."""
    moe = s.layers - s.dense_layers if s.is_moe else 0
    return 4 * (s.layers - moe) + (7 if s.shared_experts else 5) * moe + 1


def gemm_time(m: Served, hw: GPU, tokens: int, head_rows: int) -> float:
    """The GEMMs of one forward over `tokens` tokens (serving_kernels.gemm_seconds), shape by shape: each the longer of
    its weights streamed at the measured small-M rate and its math at the GPU's measured matmul rate (FP8 at
    MAMF's FP8 share; a weight-only kernel's math capped by its dequantisation). The layers' weights are read
    at the format's stored bytes per weight (scales included), the output head at the bytes it is stored in."""
    path = m.engine_or_default.gemm(m.dtype)
    rate = (hw.peak_flops_per_second * hw.matmul_efficiency * path.compute_ceiling
            * (serving_kernels.FP8_OVER_BF16_EFFICIENCY if hw.dtype == "fp8" else 1.0))
    shapes = gemm_shapes(m, tokens, head_rows)
    s = m.shape
    head_bpw = 2 if m.dtype in states.QUANTISED else states.dtype_bytes(m.dtype)
    head_bytes = s.vocab * s.d_model / m.tp * head_bpw
    layer_values = sum(N * K * count for M, N, K, count, _ in shapes[:-1])
    bpw = max(weights_read_bytes(m, tokens) - head_bytes, 0.0) / layer_values if layer_values else 0.0
    total = sum(serving_kernels.gemm_seconds(M, N, K, N * K * bpw, hw.bandwidth, rate, count, launches)
                for M, N, K, count, launches in shapes[:-1])
    M, N, K, _, _ = shapes[-1]
    return total + serving_kernels.gemm_seconds(M, N, K, head_bytes, hw.bandwidth, rate)


def kv_bytes_per_token_per_layer(m: Served) -> float:
    return kv_bytes_per_token_per_gpu(m) / m.shape.layers


def kv_head_reads(m: Served) -> int:
    """How many times one decode step's attention reads each KV head on a GPU (engines.Engine.kv_head_reads): its
    group is the query heads per KV head there, heads/tp over max(1, kv_heads/tp) (KV heads replicated when tp
    exceeds them); 1 for MLA's shared latent."""
    s = m.shape
    if s.is_mla:
        return 1
    group = round((s.heads / m.tp) / max(1.0, s.n_kv_heads / m.tp))
    return m.engine_or_default.kv_head_reads(group, s.d_head)


def _peak16(hw: GPU) -> float:
    return getattr(hw, "peak16", 0.0) or hw.peak_flops_per_second


def _kernel_floor(graphed: bool) -> float:
    return serving_kernels.SMALL_KERNEL_SECONDS_GRAPHED if graphed else serving_kernels.SMALL_KERNEL_SECONDS_EAGER


def kernels_per_step(m: Served) -> int:
    """Kernel launches of one forward: the GEMMs, one attention and the engine's small kernels per layer."""
    return gemms_per_step(m.shape) + m.shape.layers * (1 + m.engine_or_default.small_kernels_per_layer)


def prefill(m: Served, hw: GPU, batch: int, n: int) -> Phase:
    """Prefill of b prompts of n tokens on tp GPUs (time to the first output token of the batch)."""
    e, s = m.engine_or_default, m.shape
    flops = prefill_flops(s, batch, n)
    nbytes = weights_read_bytes(m, batch * n) + batch * n * kv_bytes_per_token_per_gpu(m)
    c, mem = roofline_seconds(flops / m.tp, nbytes, hw)
    comm = tp_comm_seconds(m, batch * n, hw)
    attn_flops = batch * s.layers * n * arch.attention_score_flops(s, n + 1, causal=True) / m.tp
    gemm = gemm_time(m, hw, batch * n, batch)
    curve = e.prefill_attention if getattr(hw, "hopper", False) else "fa2-ampere"
    attention = attn_flops / (_peak16(hw) * serving_kernels.prefill_attention_efficiency(curve, n))
    # Elementwise kernels per layer: two norms, the residual adds, rotary on q and k, the gated activation and the
    # KV write, each reading and writing its activations once (16-bit): about 8·d + 3·ffn/tp values per token.
    ffn = (s.d_expert * s.experts_per_token if s.is_moe else s.d_ffn) / m.tp
    elementwise = batch * n * ACTIVATION_BYTES * (8 * s.d_model + 3 * ffn) * s.layers
    kv_write = batch * n * kv_bytes_per_token_per_gpu(m)
    small = max(s.layers * e.small_kernels_per_layer * _kernel_floor(False), (elementwise + kv_write) / (hw.bandwidth * HBM_EFFICIENCY))
    gpu = gemm + attention + small + comm
    host = kernels_per_step(m) * serving_kernels.CPU_LAUNCH_SECONDS  # prefill runs eagerly (graphs are captured for decode)
    overhead = e.overhead_seconds(batch)  # the prefill is one engine step too: scheduled, sampled, its outputs processed
    return Phase(max(gpu, host) + overhead, c, mem, comm, flops, nbytes, gemm, attention, small, max(0.0, host - gpu), overhead,
                 roofline_comm_seconds(m, batch * n, hw))


def decode_step(m: Served, hw: GPU, batch: int, t: int, static_length: int | None = None) -> Phase:
    """One decode step at batch b, each sequence with t tokens of KV cache (an engine with a static cache
    reads `static_length` tokens of it, whatever t)."""
    e, s = m.engine_or_default, m.shape
    flops = decode_flops(s, batch, t)
    nbytes = weights_read_bytes(m, batch) + batch * t * kv_bytes_per_token_per_gpu(m)
    c, mem = roofline_seconds(flops / m.tp, nbytes, hw)
    comm = tp_comm_seconds(m, batch, hw)
    gemm = gemm_time(m, hw, batch, batch)
    read = static_length if (e.kv_reads == "allocated" and static_length) else t
    kernel = serving_kernels.DECODE_ATTENTION[e.decode_attention]
    kv_read = batch * read * kv_bytes_per_token_per_layer(m) * kv_head_reads(m)
    attention = s.layers * serving_kernels.memory_kernel_seconds(kernel, kv_read, hw.bandwidth)
    graphed = e.graphed(batch)
    small = s.layers * e.small_kernels_per_layer * _kernel_floor(graphed)
    gpu = gemm + attention + small + comm
    host = 0.0 if graphed else kernels_per_step(m) * serving_kernels.CPU_LAUNCH_SECONDS
    overhead = e.overhead_seconds(batch)
    return Phase(max(gpu, host) + overhead, c, mem, comm, flops, nbytes, gemm, attention, small,
                 max(0.0, host - gpu), overhead, roofline_comm_seconds(m, batch, hw))


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
    """Σ of the decode steps at KV lengths n+1 ... n+steps, exactly: a step's GPU time is linear in t (the
    attention reads b·t tokens) and the host's issue time is constant, so each step is max(a + b·t, c)."""
    if steps <= 0:
        return 0.0
    static = n + steps + 1
    # A step's GPU time is linear in t for t >= 1 (for t = 0 the attention reads nothing and pays no latency).
    g1, g2 = (decode_step(m, hw, batch, t, static) for t in (1, 2))
    gpu1 = g1.seconds - g1.overhead_seconds - g1.launch_seconds
    gpu2 = g2.seconds - g2.overhead_seconds - g2.launch_seconds
    slope = gpu2 - gpu1
    host = 0.0 if m.engine_or_default.graphed(batch) else kernels_per_step(m) * serving_kernels.CPU_LAUNCH_SECONDS
    return sum_max_linear(gpu1 - slope, slope, host, 0.0, n + 1, n + steps) + steps * g1.overhead_seconds


def roofline_decode_total_seconds(m: Served, hw: GPU, batch: int, n: int, steps: int) -> float:
    """Σ of the roofline decode steps (bytes at full bandwidth, FLOPs at the achievable rate, plus comm)."""
    if steps <= 0:
        return 0.0
    p0, p1 = decode_step(m, hw, batch, 0), decode_step(m, hw, batch, 1)
    a, b = p0.memory_seconds, p1.memory_seconds - p0.memory_seconds
    c, d = p0.compute_seconds, p1.compute_seconds - p0.compute_seconds
    return sum_max_linear(a, b, c, d, n + 1, n + steps) + steps * p0.roofline_comm_seconds


# ---------------------------------------------------------------------------- memory

def activation_reserve_bytes(m: Served, tokens: int) -> float:
    """Activations an engine reserves for a forward of `tokens` tokens (vLLM's profile run): the widest
    transient per token, the gated MLP's 2·ffn/tp outputs plus about four d-wide buffers, in 16 bits."""
    if tokens <= 0:
        return 0.0
    s = m.shape
    ffn = (s.d_expert * s.experts_per_token if s.is_moe else s.d_ffn) / m.tp
    return tokens * (2 * ffn + 4 * s.d_model) * ACTIVATION_BYTES


def reserve_bytes(m: Served | None = None, hw: GPU | None = None) -> float:
    """Memory not available to weights or KV: the CUDA context, the cuBLAS workspace (memory.py) and, for an
    engine that reserves them, the activations of its largest forward (on `hw`: vLLM V1 profiles more tokens on
    a large GPU)."""
    base = allocator.CONTEXT_BYTES + allocator.CUBLAS_WORKSPACE
    if m is None:
        return base
    return base + activation_reserve_bytes(m, m.engine_or_default.profile_tokens(hw))


@record
class MemoryPlan:
    """How an engine splits one GPU's memory: KV capacity = (fraction x memory - weights - reserved) / KV per token."""

    memory_fraction: float  # the share of memory_bytes weights, reserve and KV take together
    engine_memory_fraction: float  # the engine's own setting, in its own meaning (memory_fraction_of)
    memory_fraction_of: str
    memory_bytes: float
    weights_bytes: float
    reserved_bytes: float
    kv_bytes_per_token: float
    kv_capacity_tokens: int


def memory_plan(m: Served, hw: GPU, memory_fraction: float | None = None) -> MemoryPlan:
    """The KV pool as the engine sizes it. vLLM ("total"): fraction x memory - weights - reserve. SGLang
    ("static"): fraction x memory - weights (its activations live outside the fraction: reserve 0 here).
    TensorRT-LLM ("free"): fraction x (memory - weights - reserve), reported as the share of memory it
    comes to, so the same formula recomputes it."""
    e = m.engine_or_default
    f = e.fraction(m.tp) if memory_fraction is None else memory_fraction
    M = hw.memory_bytes
    W = math.ceil(weights_bytes_per_gpu(m))
    R = math.ceil(reserve_bytes(m, hw))
    per_token = math.ceil(kv_bytes_per_token_per_gpu(m))
    if e.memory_fraction_of == "static":
        R = 0
        effective = f
    elif e.memory_fraction_of == "free":
        pool = max(0.0, f * (M - W - R))
        effective = (W + R + pool) / M
    else:
        effective = f
    free = effective * M - W - R
    capacity = math.floor(free / per_token) if free > 0 and per_token > 0 else 0
    return MemoryPlan(effective, f, e.memory_fraction_of, M, W, R, per_token, max(0, capacity))


def kv_capacity_tokens(m: Served, hw: GPU, memory_fraction: float | None = None) -> int:
    """Tokens of KV cache that fit on each GPU (memory_plan)."""
    return memory_plan(m, hw, memory_fraction).kv_capacity_tokens


def max_batch(m: Served, hw: GPU, context: int, memory_fraction: float | None = None) -> int:
    """The most sequences of `context` tokens (input + output) whose KV cache fits: capacity // context."""
    return kv_capacity_tokens(m, hw, memory_fraction) // context


# ---------------------------------------------------------------------------- a workload

def cost_per_million(gpu_seconds: float, tokens: float, price_per_gpu_hour: float) -> float:
    """USD per million tokens: GPU-seconds per token x 1e6 x price / 3600."""
    return gpu_seconds / tokens * 1e6 * price_per_gpu_hour / 3600.0


def waves(m: Served, batch: int, capacity: int = 0, hw: GPU | None = None) -> tuple[int, int]:
    """(sequences running together, waves): an engine capping running sequences (vLLM max_num_seqs) runs a larger
    batch max_batch at a time; a continuous-batching engine also admits only the sequences whose KV cache (input +
    output tokens each, no eviction: TensorRT-LLM's GUARANTEED_NO_EVICT, vLLM without preemption) fits its pool,
    `capacity` sequences at a time (0 = none fits: the batch is kept whole, its row says fits = false). A static
    engine (gpt-fast, gptSessionBenchmark) runs the batch it is given."""
    e = m.engine_or_default
    running = batch
    cap = e.batch_cap(hw)  # vLLM V1's max_num_seqs depends on the GPU
    if cap:
        running = min(running, cap)
    if e.batching == "continuous" and capacity > 0:
        running = min(running, capacity)
    return running, math.ceil(batch / running)


def _run(m: Served, hw: GPU, batch: int, n: int, out: int, memory_fraction: float | None = None) -> tuple[Phase, float, float]:
    """(prefill, decode seconds, latency) of `batch` requests, in waves where the engine caps the batch or its KV
    pool holds fewer."""
    running, count = waves(m, batch, max_batch(m, hw, n + out, memory_fraction), hw)
    pre = prefill(m, hw, running, n)
    decode = decode_total_seconds(m, hw, running, n, out - 1)
    latency = pre.seconds + decode
    if count > 1:
        last = batch - running * (count - 1)
        pre_last = prefill(m, hw, last, n)
        latency = (count - 1) * latency + pre_last.seconds + decode_total_seconds(m, hw, last, n, out - 1)
    return pre, decode, latency


def serve(m: Served, hw: GPU, batch: int, n: int, out: int, price: float | None = None,
          memory_fraction: float | None = None) -> dict[str, Any]:
    """One row: b sequences of n input and `out` output tokens on tp GPUs, as the engine runs them."""
    if batch < 1 or n < 1 or out < 1:
        raise InputError("batch, input and output tokens must be positive whole numbers")
    e = m.engine_or_default
    path = e.gemm(m.dtype)
    plan = memory_plan(m, hw, memory_fraction)
    biggest = plan.kv_capacity_tokens // (n + out)
    running, count = waves(m, batch, biggest, hw)
    pre, decode_seconds, latency = _run(m, hw, batch, n, out, memory_fraction)
    steps = out - 1  # the prefill yields the first output token
    mean_t = n + (steps + 1) / 2 if steps else n + 1  # the mean KV length of a decode step
    mean_step = decode_step(m, hw, running, round(mean_t), n + out)
    tpot = decode_seconds / steps if steps else decode_step(m, hw, running, n + 1, n + out).seconds
    roof_pre = pre.roofline_seconds
    roof_decode = roofline_decode_total_seconds(m, hw, running, n, steps)
    roof_tpot = roof_decode / steps if steps else mean_step.roofline_seconds
    floor = weights_read_bytes(m, running) / hw.bandwidth
    row: dict[str, Any] = {
        "engine": e.id,
        "engine_version": e.version,
        "gpu": hw.gpu,
        "tp": m.tp,
        "ep": m.ep,
        "dtype": m.dtype,
        "kv_dtype": m.kv_dtype,
        "compute_dtype": hw.dtype,
        "gemm_kernel": path.kernel,
        "decode_attention_kernel": e.decode_attention_name or serving_kernels.DECODE_ATTENTION[e.decode_attention].name,
        "decode_kv_head_reads": kv_head_reads(m),
        "cuda_graphs": e.graphed(running),
        "batching": e.batching,
        "batch": batch,
        "running_batch": running,
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
        "weights_bytes": plan.weights_bytes,  # per GPU; whole bytes (a shard's remainder rounds up)
        "kv_cache_bytes": math.ceil(batch * (n + out) * kv_bytes_per_token_per_gpu(m)),
        "kv_cache_bytes_per_token": plan.kv_bytes_per_token,
        "memory_bytes": plan.memory_bytes,
        "memory_fraction": plan.memory_fraction,
        "engine_memory_fraction": plan.engine_memory_fraction,
        "memory_fraction_of": plan.memory_fraction_of,
        "reserved_bytes": plan.reserved_bytes,
        "kv_capacity_tokens": plan.kv_capacity_tokens,
        "max_batch": biggest,
        "fits": batch <= biggest,
        # what each part of a mean decode step and of the prefill took, and the roofline beside them
        "decode_step_seconds": mean_step.seconds,
        "decode_gemm_seconds": mean_step.gemm_seconds,
        "decode_attention_seconds": mean_step.attention_seconds,
        "decode_small_kernels_seconds": mean_step.small_kernels_seconds,
        "decode_comm_seconds": mean_step.comm_seconds,
        "decode_launch_seconds": mean_step.launch_seconds,
        "decode_overhead_seconds": mean_step.overhead_seconds,
        "prefill_gemm_seconds": pre.gemm_seconds,
        "prefill_attention_seconds": pre.attention_seconds,
        "prefill_small_kernels_seconds": pre.small_kernels_seconds,
        "prefill_comm_seconds": pre.comm_seconds,
        "prefill_launch_seconds": pre.launch_seconds,
        "prefill_overhead_seconds": pre.overhead_seconds,
        "roofline_prefill_seconds": roof_pre,
        "roofline_time_per_output_token_seconds": roof_tpot,
        "roofline_latency_seconds": count * (roof_pre + roof_decode),
        "weights_floor_seconds": floor,
        "peak_flops_per_second": hw.peak_flops_per_second,
        "bandwidth_bytes_per_second": hw.bandwidth,
        "matmul_efficiency": hw.matmul_efficiency,
        "prefill_flops": pre.flops,
        "decode_step_flops": mean_step.flops,
    }
    if price is not None:
        row["price_usd_per_gpu_hour"] = price
        row["cost_usd_per_million_input_tokens"] = cost_per_million(pre.seconds * m.tp * count, batch * n, price)
        row["cost_usd_per_million_output_tokens"] = cost_per_million(
            (latency - count * pre.seconds if steps else tpot * count) * m.tp, batch * max(steps, 1), price)
        row["cost_usd_per_request"] = latency * m.tp * price / 3600.0 / batch
    return row


def gpu_seconds_per_token(m: Served, hw: GPU, batch: int, n: int, out: int) -> float:
    """GPU-seconds per token processed (input + output) for this workload: tp · latency / (b·(n+out))."""
    _, _, latency = _run(m, hw, batch, n, out)
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
