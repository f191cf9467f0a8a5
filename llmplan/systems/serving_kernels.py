"""Serving kernels at their measured rates: decode GEMMs with M = batch, decode attention by KV bytes,
prefill attention by prompt length, small-message all-reduce.

Every rate here comes from a kernel-level measurement (never from an end-to-end serving figure); the
points each constant was fitted to are kept below (DECODE_ATTENTION_POINTS, GEMM_STREAM_POINTS,
GEMM_M_POINTS) so that tests/test_kernels.py re-fits them and checks every point. Two shapes recur:

- a memory-bound kernel that reads B bytes takes t = t0 + B / (eta x HBM bandwidth): a fixed latency
  (launch, tail, split-K merge) plus the bytes at the share of the datasheet bandwidth the kernel reaches
  (the roofline, Williams et al. 2009, with a latency term);
- a GEMM's math takes a fixed time plus its FLOPs at the GPU's measured large-matmul rate (fitted to the
  measured sm_90 GEMM table): so a GEMM of a few hundred rows is far below peak, and a decode GEMM (M = batch)
  streams its weights at the share of bandwidth measured for small-M GEMMs.

Pure functions; no numpy.
"""

from __future__ import annotations

import math

from llmplan.records import record

# ---------------------------------------------------------------------------- decode attention

@record
class MemoryKernel:
    """A memory-bound kernel: t = latency + bytes / (bandwidth_share x HBM bandwidth)."""

    name: str
    latency_seconds: float
    bandwidth_share: float
    source: str


# Points read from the FlashInfer blog, "Accelerating Self-Attentions for LLM Serving with FlashInfer"
# (flashinfer-ai.github.io, 2024-02-02, Figure 6, H100 SXM 80GB panel; llama-7b setting: 32 KV heads x 128,
# fp16, one layer; nvbench "cold" GPU time): (batch, KV length per request, bandwidth utilisation %), read
# from the plot to about +-2 points. The first list is FlashInfer 0.0.1, the second vLLM 0.2.6 PagedAttention v2.
DECODE_ATTENTION_POINTS = {
    "flashinfer": [(64, 32, 41), (64, 64, 51), (64, 128, 64), (64, 256, 76), (64, 512, 83), (64, 1024, 88),
                   (16, 32, 18), (16, 64, 28), (16, 128, 40), (16, 256, 51), (16, 512, 63), (16, 1024, 76),
                   (16, 2048, 84), (16, 4096, 89), (1, 512, 15), (1, 1024, 22), (1, 2048, 35), (1, 4096, 45),
                   (1, 8192, 59), (1, 16384, 72), (1, 32768, 82), (1, 65536, 88)],
    "paged-attention-v2": [(64, 32, 28), (64, 64, 44), (64, 128, 58), (64, 256, 70), (64, 512, 77), (64, 1024, 85),
                           (16, 32, 16), (16, 64, 26), (16, 128, 37), (16, 256, 48), (16, 512, 61), (16, 1024, 71),
                           (16, 2048, 77), (16, 4096, 85), (1, 512, 8), (1, 1024, 15), (1, 2048, 25), (1, 4096, 41),
                           (1, 8192, 60), (1, 16384, 70), (1, 32768, 75), (1, 65536, 82)],
}
# The figure's setting: bytes of K and V per token of one layer (2 x 32 heads x 128 x 2 bytes) and the H100's
# bandwidth as the blog's table gives it.
DECODE_ATTENTION_BYTES_PER_TOKEN = 2 * 32 * 128 * 2
DECODE_ATTENTION_BANDWIDTH = 3.352e12

DECODE_ATTENTION = {
    # Least-squares fits (in log time) of t = t0 + bytes / (eta x 3.352 TB/s) to the points above: median
    # |error| 5% (FlashInfer) and 4% (PagedAttention v2); the worst points are batch 1 at short KV.
    "flashinfer": MemoryKernel("FlashInfer batch decode (paged KV)", 13.99e-6, 0.857,
                               "FlashInfer blog 2024-02-02 Fig. 6 (H100), fitted: t0 13.99 us, 85.7% of HBM bandwidth"),
    "paged-attention-v2": MemoryKernel("vLLM PagedAttention v2", 20.36e-6, 0.854,
                                       "FlashInfer blog 2024-02-02 Fig. 6 (H100, vLLM 0.2.6 PagedAttention v2), fitted: t0 20.36 us, 85.4% of HBM bandwidth"),
}


def memory_kernel_seconds(k: MemoryKernel, nbytes: float, bandwidth: float) -> float:
    """t = t0 + B / (eta x BW) (roofline with a fixed latency); 0 for no bytes."""
    if nbytes <= 0:
        return 0.0
    return k.latency_seconds + nbytes / (k.bandwidth_share * bandwidth)


# ---------------------------------------------------------------------------- GEMMs

# DeepGEMM's dense FP8 GEMMs at M = 64 on an H800 SXM5 (3.35 TB/s HBM3, the H100's), deepseek-ai/DeepGEMM README.md
# @55ab91f7 ("Normal GEMMs for dense models"): (M, N, K, TFLOP/s). At M = 64 every one is bound by reading its
# N x K FP8 weights (the README gives 1688-2668 GB/s). Bytes counted: N·K weights (1 byte) + M·K input (1 byte)
# + M·N output (bf16, 2 bytes).
GEMM_STREAM_POINTS = [(64, 2112, 7168, 206), (64, 24576, 1536, 289), (64, 32768, 512, 219),
                      (64, 7168, 16384, 336), (64, 4096, 7168, 287), (64, 7168, 2048, 295)]
GEMM_STREAM_BANDWIDTH = 3.35e12
# Fit of t = t0 + bytes / (eta x 3.35 TB/s) to those six points (log least squares): t0 2.12 us, eta 0.832;
# four points within 2%, the two smallest GEMMs (15 MB) 20-22% slower than the fit.
GEMM_STREAM = MemoryKernel("weight-streaming GEMM (small M)", 2.12e-6, 0.832,
                           "DeepGEMM README @55ab91f7, FP8 GEMMs at M=64 on H800 (3.35 TB/s), fitted: t0 2.12 us, 83.2% of HBM bandwidth")

# OpenXLA's measured sm_90 (H100 80GB HBM3) bf16 GEMM table, kDefaultMatmulPTable in
# xla/service/gpu/model/matmul_interpolator_data.h @372d578b: (M, N, K, fraction of the 989 TFLOP/s peak). Small and
# mid-size GEMMs fall far below peak: a GEMM's math takes t_c + 2·M·N·K / (eta x peak), eta the GPU's measured large-
# matmul efficiency (0.8064 on the H100, llmplan.systems.gpu) and t_c a fixed time per GEMM (prologue, epilogue, the
# last partial wave), fitted to these 8 points (log least squares): 7.52 us; the points then lie within -10%..+16%
# (median |error| 7%). tests/test_kernels.py re-fits it.
GEMM_M_POINTS = [(512, 4096, 4096, 0.651), (1024, 4096, 2048, 0.641), (1024, 2048, 2048, 0.530), (256, 4096, 2048, 0.328),
                 (256, 2048, 4096, 0.289), (2048, 2048, 2048, 0.639), (4096, 4096, 4096, 0.792), (1024, 1024, 4096, 0.475)]
GEMM_M_EFFICIENCY = 0.8064  # the efficiency the fit holds fixed: our H100 measurement (presets/gpus.toml h100-sxm)
GEMM_COMPUTE_LATENCY = 7.52e-6
# Best-case FP8 over BF16 matmul rate on H100 SXM: MAMF 1402.6 / 794.5 TFLOP/s (stas00/ml-engineering
# compute/accelerator/README.md @744d01e) at peaks 1979 / 989: FP8 reaches 0.709 of its peak where BF16 reaches
# 0.803, i.e. 0.883 of the BF16 fraction.
FP8_OVER_BF16_EFFICIENCY = (1402.6 / 1979) / (794.5 / 989)
# Rows of the smallest tensor-core MMA (mma.sync m16n8k16 on Ampere and Ada; NVIDIA PTX ISA, "Matrix shape"): a GEMM
# with fewer rows (a decode GEMM, M = batch) still multiplies 16, as weight-streaming kernels do (Marlin's 16-row
# blocks, IST-DASLab/marlin README).
MMA_ROWS = 16


def gemm_seconds(M: float, N: float, K: float, weight_bytes: float, bandwidth: float, rate: float,
                 count: float = 1, launches: float | None = None, stream: MemoryKernel = GEMM_STREAM) -> float:
    """`count` GEMMs of M x N x K, each reading `weight_bytes` of weights, in `launches` kernels (default one
    each; a fused MoE kernel runs every expert of a layer in one): the longer of the weights streamed (t0 per
    launch + bytes / (eta x bandwidth), GEMM_STREAM, measured at small M) and the math (t_c per launch +
    2·M'·N·K / rate, M' = M padded to the 16-row MMA; rate = peak x the GPU's matmul efficiency, x the
    dequantisation ceiling of a weight-only kernel). An MoE expert no token reaches (M = 0) costs nothing."""
    if M <= 0 or count <= 0:
        return 0.0
    launches = count if launches is None else launches
    rows = max(M, math.ceil(M / MMA_ROWS) * MMA_ROWS) if M < 128 else M
    memory = launches * stream.latency_seconds + count * weight_bytes / (stream.bandwidth_share * bandwidth)
    compute = launches * GEMM_COMPUTE_LATENCY + count * 2.0 * rows * N * K / rate
    return max(memory, compute)


# ---------------------------------------------------------------------------- prefill attention

# Forward attention, causal, head dim 128, H100 SXM5, FP16 (TFLOP/s at sequence length 512, 1k, 2k, 4k, 8k, 16k):
# FlashAttention-3 paper (Shah et al. 2024, arXiv 2407.08608) Fig. "Forward, causal, hdim 128" (panel d), whose
# FA2 bars are FlashAttention-2 on the same GPU. As fractions of the 989 TFLOP/s dense peak.
PREFILL_SEQ = (512, 1024, 2048, 4096, 8192, 16384)
PREFILL_ATTENTION = {
    "fa2": tuple(v / 989 for v in (191, 260, 298, 319, 333, 335)),
    "fa3": tuple(v / 989 for v in (292, 423, 521, 579, 602, 616)),
    # FlashAttention-2 on an A100 SXM4 80GB, forward + backward, causal, hdim 128 (flash-attention README,
    # assets/flash2_a100_fwd_bwd_benchmark.png): 99/133/155/173/182/189 of 312 TFLOP/s. The only FA2 curve
    # measured on a non-Hopper GPU; used for every GPU without FP8 tensor cores of the Hopper kind.
    "fa2-ampere": tuple(v / 312 for v in (99, 133, 155, 173, 182, 189)),
}


def prefill_attention_efficiency(kernel: str, n: int) -> float:
    """Fraction of the 16-bit dense peak causal forward attention reaches at prompt length n: the measured
    curve, linear in log2(n) between points, held at its ends (below 512 the 512 value, an upper bound)."""
    import math

    curve = PREFILL_ATTENTION[kernel]
    if n <= PREFILL_SEQ[0]:
        return curve[0]
    if n >= PREFILL_SEQ[-1]:
        return curve[-1]
    for i in range(len(PREFILL_SEQ) - 1):
        lo, hi = PREFILL_SEQ[i], PREFILL_SEQ[i + 1]
        if n <= hi:
            w = (math.log2(n) - math.log2(lo)) / (math.log2(hi) - math.log2(lo))
            return curve[i] + w * (curve[i + 1] - curve[i])
    return curve[-1]


# ---------------------------------------------------------------------------- small kernels and launches

# Tiny kernels inside and outside a CUDA graph: CUDA.jl's documentation measures 80 broadcast kernels at 260 us
# launched normally and 70 us as a graph (shared/reference kernels-and-collectives.md §5): 0.875 us per kernel in
# a graph, 3.25 us per kernel eagerly.
SMALL_KERNEL_SECONDS_GRAPHED = 70e-6 / 80
SMALL_KERNEL_SECONDS_EAGER = 260e-6 / 80
# Host time to launch one kernel from an eager framework: "Usually, the launch time on the CPU side is between
# 5-20 microseconds" (facebookresearch/HolisticTraceAnalysis docs, cuda_kernel_launch_stats.rst); the low end.
CPU_LAUNCH_SECONDS = 5e-6


# ---------------------------------------------------------------------------- all-reduce at decode sizes

# NCCL's latency model (NVIDIA/nccl src/graph/tuning.cc @5067397c): ring LL protocol base latency 6.6 us and 0.6 us
# per NVLink hop, the protocol NCCL picks below ~1 MiB ("Algo RING proto LL up to a 1MiB payload", ml-engineering
# network/README.md). Over PCIe the file's NVLink LL hop is not used: the Simple-protocol 3.4 us per step (no PCIe
# figure was found; an assumption).
NCCL_LL_BASE = 6.6e-6
NCCL_LL_HOP_NVLINK = 0.6e-6
NCCL_HOP_OTHER = 3.4e-6
# Measured all-reduce bus bandwidth inside one node (NVIDIA GTC24 S62129 "Collective Communication Bandwidth",
# nccl-tests): PCIe Gen4 24 GB/s, PCIe Gen5 48 GB/s; NVLink4 (H100) 370, NVLink3 (A100) 232 GB/s. As a fraction of
# the per-direction link rate: PCIe Gen4 24/32, NVLink4 370/450.
PCIE_BUSBW_SHARE = 24.0 / 32.0


def all_reduce_seconds(size: float, n: int, busbw: float, link: str) -> float:
    """Ring all-reduce of `size` bytes over n GPUs: alpha + size·2(n-1)/n / busbw, alpha = NCCL's LL base
    latency + 2(n-1) hops (Thakur et al. 2005; NCCL tuning.cc). 0 for one GPU."""
    if n <= 1:
        return 0.0
    hop = NCCL_LL_HOP_NVLINK if link == "nvlink" else NCCL_HOP_OTHER
    return NCCL_LL_BASE + 2 * (n - 1) * hop + size * 2 * (n - 1) / n / busbw
