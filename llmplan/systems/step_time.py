"""Step time of one training layout, from first principles: compute, memory-bound work, collectives, bubble.

A step of a decoder-only transformer on `tp·pp·cp·dp` GPUs is counted per micro-batch and per
pipeline stage, then assembled by the 1F1B schedule (Narayanan et al. 2021, SC21, §2.2):

- matmuls at the GPU's achievable matmul rate plus their operand traffic at HBM bandwidth (both
  sides of the roofline, Williams et al. 2009) and output-tile and wave quantisation over the GPU's SMs
  (NVIDIA "Matrix Multiplication Background" guide), so a small or skinny GEMM runs slower than a large
  square one; HBM at the fraction of its datasheet rate memory-bound kernels reach;
- attention scores: FlashAttention kernels at their published fraction of peak, or (Megatron's
  fused softmax, `attention="eager"`) batched GEMMs plus the s^2 softmax/dropout traffic;
- element-wise work (norms, activations, residuals, dropout, rotary, cross-entropy, optimizer step)
  as bytes moved at HBM bandwidth;
- tensor-parallel collectives per layer (Megatron: 2 all-reduces forward, 2 backward; with sequence
  parallelism all-gather + reduce-scatter of the same volume; Korthikanti et al. 2022 §4.2.2),
  pipeline point-to-point and the bubble (p-1)/(v·m), data-parallel gradient reduction (and ZeRO-3
  parameter gathers) with the part that overlaps backward, context-parallel ring exchange of K/V
  (Liu et al. 2023, ring attention), expert-parallel all-to-all (Lepikhin et al. 2020, GShard);
- every collective by an alpha-beta model (Thakur, Rabenseifner & Gropp 2005) over the link it
  crosses, ring or tree, whichever is faster, as NCCL's tuner chooses (NCCL src/graph/tuning.cc).

Every function is written with arithmetic only (no `if` on values, no math.ceil), so the layout
search can call it with numpy arrays and evaluate thousands of layouts at once. No printing.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from llmplan.errors import InputError

RECOMPUTE = ("none", "selective", "full")
ATTENTION = ("flash", "eager")

# Achievable fraction of the dense peak used when the catalog has no measured matmul_efficiency:
# our H100 measurement (797.86 of 989.4 TFLOP/s, tests/data/gpu_memory_calibration.jsonl), assumed
# to carry over to other GPUs.
DEFAULT_MATMUL_EFFICIENCY = 797.8646535989881 / 989.4
# The GEMM our matmul_efficiency was measured on: bf16 8192 x 8192 x 8192 (tests/data/gpu_memory_calibration.jsonl,
# case matmul, timed as torch `a @ b`).
REFERENCE_GEMM = 8192
# FlashAttention-2 forward+backward reaches 50-73% of the A100's peak (Dao 2023, "FlashAttention-2",
# abstract and Fig. 4-6, head dim 128, causal); the middle of that range.
FLASH_EFFICIENCY = 0.6
# Backward of flash attention: 5 matmuls (S recomputed, dV, dP, dQ, dK) against 2 forward (Dao 2023, Alg. 2).
FLASH_BACKWARD_RATIO = 2.5
# Memory-bound kernels reach about 88-90% of the datasheet HBM bandwidth, the best of them ~90% (NVIDIA
# Developer Forums, "Trouble to reach peak bandwidth of A100" (topic 339083): 1.80 of 2.04 TB/s on an A100
# 80GB SXM, 88% by Nsight Compute, citing a GTC talk where no kernel passed ~90%): DRAM refresh, bank and
# read/write turnaround overheads.
HBM_EFFICIENCY = 0.88
# Output tile of a large cuBLAS GEMM: partial tiles cost a whole one (NVIDIA Deep Learning Performance
# guide, "Matrix Multiplication Background", tile quantisation; 128x128 is a typical Ampere/Hopper tile).
TILE = 128
# NCCL's latency model (NCCL src/graph/tuning.cc, protocol Simple): a base latency per collective and a
# latency per ring step, NVLink vs network, in seconds.
NCCL_BASE_LATENCY = 8.4e-6
NCCL_STEP_LATENCY_INTRA = 3.4e-6
NCCL_STEP_LATENCY_INTER = 14e-6
# NCCL's topology model takes an NVLink at 20 GB/s per direction (src/graph/topo.h, SM80_NVLINK_BW 20.0;
# SM90 20.6) of the 25 GB/s a NVLink 3/4 link signals (A100/H100 datasheets: 12 or 18 links, 300/450 GB/s):
# the packet overhead of the link protocol. Collectives inside a node run at this fraction of the
# catalog's (datasheet) intra-node bandwidth.
NVLINK_EFFICIENCY = 20.0 / 25.0


def link_efficiency(link: str | None) -> float:
    """The fraction of the datasheet intra-node rate collectives reach: NVLINK_EFFICIENCY on NVLink (the
    derate NCCL's topology model applies); other links (PCIe, Infinity Fabric) at their datasheet rate,
    for which llmplan has no measured derate (an optimistic bound)."""
    return NVLINK_EFFICIENCY if link == "nvlink" else 1.0
# Backward of an element-wise op reads its saved input and the output gradient and writes the input
# gradient: 3 tensors where the forward moves 2.
ELEMENTWISE_BACKWARD_RATIO = 1.5
# Mixed-precision Adam step per parameter, bytes moved (Micikevicius et al. 2018; Megatron-LM
# megatron/optimizer/optimizer.py): zero the fp32 main gradient for the next step (4), read it for the
# global-norm clip (4), Adam reads gradient, master weight, m, v (16) and writes weight, m, v (12), then
# the master weight is copied to the 16-bit model weight (read 4, write 2).
ADAM_BYTES_PER_PARAM = 4 + 4 + 28 + 6
# Gradients accumulate over micro-batches in an fp32 buffer (Megatron-LM `main_grad`, fused into the
# weight-gradient GEMM by gradient_accumulation_fusion; PyTorch DDP/FSDP keep .grad likewise): each
# micro-batch reads and writes it once, per parameter.
GRAD_ACCUMULATION_BYTES_PER_PARAM = 8


# ---------------------------------------------------------------------------- data

@dataclass(frozen=True)
class Cluster:
    """A GPU type and how it is wired: peak, HBM, scale-up domain, link bandwidths (per GPU per direction)."""

    gpu: str
    peak_flops_per_second: float
    bandwidth: float  # HBM bytes/s
    memory_bytes: float
    gpus_per_node: int
    intra_node_bandwidth: float
    inter_node_bandwidth: float | None
    matmul_efficiency: float = DEFAULT_MATMUL_EFFICIENCY
    dtype: str = "bf16"
    sms: int = 0  # streaming multiprocessors (CUs): output tiles run in waves of this many; 0 = unknown, no wave quantisation
    intra_link_efficiency: float = NVLINK_EFFICIENCY  # what NCCL reaches of the datasheet intra-node rate

    @classmethod
    def from_preset(cls, gpu: Any, dtype: str = "bf16", gpus_per_node: int | None = None,
                    intra_bw: float | None = None, inter_bw: float | None = None,
                    matmul_efficiency: float | None = None) -> "Cluster":
        """From a gpus.toml entry, each interconnect field overridable (--gpus-per-node, --intra-bw, ...)."""
        from llmplan.systems.hardware import peak_flops

        peak, used = peak_flops(gpu, dtype)
        per_node = gpus_per_node or gpu.get("gpus_per_node")
        intra = intra_bw or gpu.get("intra_node_bandwidth")
        inter = inter_bw or gpu.get("inter_node_bandwidth")
        eff = matmul_efficiency or gpu.get("matmul_efficiency") or DEFAULT_MATMUL_EFFICIENCY
        if per_node is None:
            per_node = 1
        if intra is None:
            intra = inter or 0.0
        if not 0 < eff <= 1:
            raise InputError(f"--matmul-efficiency {eff} must be a fraction of the peak in (0, 1]")
        return cls(gpu.id, peak, float(gpu["bandwidth"]), float(gpu["memory_bytes"]), int(per_node),
                   float(intra), None if inter is None else float(inter), float(eff), used, int(gpu.get("sms") or 0),
                   link_efficiency(gpu.get("intra_node_link")))

    @property
    def hbm_rate(self) -> float:
        """Bytes/s a memory-bound kernel moves: the datasheet bandwidth x HBM_EFFICIENCY."""
        return self.bandwidth * HBM_EFFICIENCY

    @property
    def matmul_rate(self) -> float:
        """FLOP/s of the math side of a GEMM, calibrated so that the reference GEMM (REFERENCE_GEMM cubed,
        where matmul_efficiency was measured) takes exactly its measured time with its operand traffic added."""
        n = REFERENCE_GEMM
        measured = 2.0 * n ** 3 / (self.peak_flops_per_second * self.matmul_efficiency)
        traffic = 3.0 * n * n * 2 / self.hbm_rate
        padded = 2.0 * quantised_tiles(n, n, 1, self.sms) * TILE * TILE * n
        return padded / max(measured - traffic, 0.5 * measured)

    def require_links(self, gpus: int) -> None:
        """A run across nodes needs the inter-node bandwidth, one inside a node the intra-node one."""
        if gpus > self.gpus_per_node and not self.inter_node_bandwidth:
            raise InputError(f"{gpus} GPUs span more than one node of {self.gpus_per_node} {self.gpu}, and the catalog has no inter-node "
                             f"bandwidth for it; give --inter-bw (bytes/s per GPU, e.g. 25GB for 200 Gb/s InfiniBand) or --gpus-per-node")
        if min(gpus, self.gpus_per_node) > 1 and not self.intra_node_bandwidth:
            raise InputError(f"the catalog has no intra-node bandwidth for {self.gpu}; give --intra-bw (bytes/s per GPU per direction)")


@dataclass(frozen=True)
class Layout:
    """A parallel layout: tp·pp·cp·dp GPUs; ep experts groups carved out of dp·cp (Megatron-Core)."""

    tp: int = 1
    pp: int = 1
    vp: int = 1  # virtual stages per pipeline rank (interleaved 1F1B)
    dp: int = 1
    cp: int = 1
    ep: int = 1
    zero: int = 0  # 0 none, 1 optimizer states, 2 + gradients, 3 + parameters (FSDP)
    micro_batch: int = 1  # sequences per micro-batch
    recompute: str = "none"  # none | selective | full
    sequence_parallel: bool = False

    @property
    def gpus(self) -> int:
        return self.tp * self.pp * self.cp * self.dp

    def keys(self) -> dict[str, Any]:
        return {"tp": self.tp, "pp": self.pp, "vp": self.vp, "dp": self.dp, "cp": self.cp, "ep": self.ep,
                "zero": self.zero, "micro_batch": self.micro_batch, "recompute": self.recompute,
                "sequence_parallel": self.sequence_parallel}


@dataclass(frozen=True)
class Run:
    """What is trained, independent of the layout: the sequence, the global batch, the kernels used."""

    seq: int
    global_batch: int  # sequences per step
    attention: str = "flash"  # flash | eager (Megatron fused softmax, s^2 scores in HBM)
    dropout: bool = False  # dropout on attention probabilities and residuals (GPT-3/Megatron: 0.1)
    overlap_dp: bool = True  # gradient reduction overlaps backward (PyTorch DDP buckets, Megatron --overlap-grad-reduce)
    compute_bytes: int = 2  # bytes of an activation value (bf16/fp16)


@dataclass
class StepTime:
    """A training step, in seconds, and what it is made of (item 3 of the issue)."""

    step_seconds: float
    tokens_per_second: float
    tokens_per_second_per_gpu: float
    model_flops_per_second_per_gpu: float
    hardware_flops_per_second_per_gpu: float
    mfu: float
    hfu: float
    compute_seconds: float
    tp_comm_seconds: float
    pp_comm_seconds: float
    bubble_seconds: float
    dp_comm_seconds: float
    cp_comm_seconds: float
    ep_comm_seconds: float
    optimizer_seconds: float
    micro_batches: float
    model_flops: float  # per step, all GPUs (PaLM App. B)
    hardware_flops: float  # per step, all GPUs, recompute counted

    PARTS = ("compute", "tp_comm", "pp_comm", "bubble", "dp_comm", "cp_comm", "ep_comm", "optimizer")

    def row(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        for part in self.PARTS:
            out[f"{part}_fraction"] = getattr(self, f"{part}_seconds") / self.step_seconds
        return out


# ---------------------------------------------------------------------------- arithmetic helpers
# (work on floats and on numpy arrays alike)

def _max(a, b):
    return (a + b + abs(a - b)) / 2


def _ceil_to(x, k):
    return -(-x // k) * k


def _where(cond, a, b):
    return cond * a + (1 - cond) * b


def _log2_ceil(n):
    """ceil(log2 n) for n >= 1, exact for n up to 2**20, arithmetic only."""
    out = 0
    for k in range(20):
        out = out + (n > 2 ** k)
    return out


# ---------------------------------------------------------------------------- compute

def quantised_tiles(M, N, batch, sms):
    """Output tiles a GEMM pays for: partial tiles count whole (tile quantisation) and the tiles run in
    waves of one per SM, a partial last wave costing a whole one (wave quantisation; NVIDIA Deep Learning
    Performance guide, "Matrix Multiplication Background": e.g. 1.33 waves of tiles take as long as 2)."""
    tiles = _ceil_to(M, TILE) // TILE * (_ceil_to(N, TILE) // TILE) * batch
    if not sms:
        return tiles
    return _ceil_to(tiles, sms)


def gemm_seconds(M, N, K, cluster: Cluster, batch=1, nbytes=2):
    """One (batched) GEMM C[M,N] = A[M,K]·B[K,N]: padded FLOPs / achievable rate + bytes / HBM.

    The two sides of the roofline (Williams, Waterman & Patterson 2009) added rather than maxed: a
    GEMM near the ridge point reaches about half the kinked roofline, as measured GEMM-vs-intensity
    curves show, and a large square GEMM loses only its operand traffic (a few %). Output tiles are
    padded to TILE (NVIDIA "Matrix Multiplication Background", tile quantisation). The math rate is
    calibrated on the measured reference GEMM (Cluster.matmul_rate): an 8192-cubed bf16 GEMM runs at
    exactly peak · matmul_efficiency.
    """
    flops = 2.0 * quantised_tiles(M, N, batch, cluster.sms) * TILE * TILE * K
    moved = (M * K + K * N + M * N) * nbytes * batch
    return flops / cluster.matmul_rate + moved / cluster.hbm_rate


def elementwise_seconds(nbytes, cluster: Cluster):
    """Memory-bound work: bytes moved / achievable HBM bandwidth (the roofline's memory side)."""
    return nbytes / cluster.hbm_rate


# ---------------------------------------------------------------------------- collectives

def _link(span, cluster: Cluster):
    """(bandwidth, per-step latency) of a group whose ranks span `span` consecutive GPUs."""
    inside = span <= cluster.gpus_per_node
    inter = cluster.inter_node_bandwidth or cluster.intra_node_bandwidth
    return (_where(inside, cluster.intra_link_efficiency * cluster.intra_node_bandwidth, inter),
            _where(inside, NCCL_STEP_LATENCY_INTRA, NCCL_STEP_LATENCY_INTER))


def all_reduce_seconds(size, n, span, cluster: Cluster):
    """All-reduce of `size` bytes over n ranks: ring 2(n-1)/n·S/B + 2(n-1)·alpha, or double binary tree
    2·S/B + 2·ceil(log2 n)·alpha, whichever is faster (Thakur et al. 2005; NCCL tuning.cc). 0 for n = 1."""
    B, alpha = _link(span, cluster)
    ring = 2 * (n - 1) / n * size / B + 2 * (n - 1) * alpha
    tree = 2 * size / B + 2 * _log2_ceil(n) * alpha
    best = (ring + tree - abs(ring - tree)) / 2
    return (n > 1) * (NCCL_BASE_LATENCY + best)


def all_gather_seconds(size, n, span, cluster: Cluster):
    """All-gather (or reduce-scatter) whose full buffer is `size` bytes: ring (n-1)/n·S/B + (n-1)·alpha."""
    B, alpha = _link(span, cluster)
    return (n > 1) * (NCCL_BASE_LATENCY + (n - 1) / n * size / B + (n - 1) * alpha)


def all_to_all_seconds(size, n, span, cluster: Cluster):
    """All-to-all of `size` bytes per rank: each rank sends (n-1)/n of it, n-1 peers (GShard dispatch)."""
    B, alpha = _link(span, cluster)
    return (n > 1) * (NCCL_BASE_LATENCY + (n - 1) / n * size / B + (n - 1) * alpha)


def p2p_seconds(size, crosses_node, cluster: Cluster):
    """One point-to-point send of `size` bytes (pipeline stage boundary)."""
    inter = cluster.inter_node_bandwidth or cluster.intra_node_bandwidth
    B = _where(crosses_node, inter, cluster.intra_link_efficiency * cluster.intra_node_bandwidth)
    alpha = _where(crosses_node, NCCL_STEP_LATENCY_INTER, NCCL_STEP_LATENCY_INTRA)
    return NCCL_BASE_LATENCY + size / B + alpha


# ---------------------------------------------------------------------------- one layer

@dataclass
class LayerCost:
    """Seconds of one decoder layer for one micro-batch on one GPU, split the way the step reports it."""

    forward: Any  # compute (matmuls, attention, element-wise) of the forward pass
    backward: Any
    recompute: Any  # extra forward compute for activation recomputation
    tp_comm: Any  # forward + backward + recompute TP collectives
    cp_comm: Any  # exposed part of the ring exchange
    ep_comm: Any
    recompute_flops: Any


def _widths(shape):
    """(query width, kv width, d_ffn, gated) of a decoder layer; MLA as its per-head q/k and v widths."""
    if shape.is_mla:
        qk = shape.heads * (shape.qk_nope_head_dim + shape.qk_rope_head_dim)
        return qk, (shape.heads * shape.v_head_dim + qk) / 2, shape.d_ffn, shape.mlp in ("swiglu", "geglu")
    return shape.attn_width, shape.kv_width, shape.d_ffn, shape.mlp in ("swiglu", "geglu")


def layer_cost(shape, run: Run, layout, cluster: Cluster, moe: bool = False) -> LayerCost:
    """One layer, one micro-batch, one GPU. `layout` fields may be numpy arrays (the search)."""
    from llmplan.model import arch

    tp, cp, ep, b = layout.tp, layout.cp, layout.ep, layout.micro_batch
    sp = layout.sequence_parallel
    c = run.compute_bytes
    s = run.seq
    h = shape.d_model
    T = b * s / cp  # tokens of this GPU's micro-batch
    qw, kvw, ffn, gated = _widths(shape)
    hd = shape.d_head if not shape.is_mla else qw / shape.heads
    kv_local = _max(kvw / tp, hd)  # fewer KV heads than tp ranks: each rank keeps one head (replicated)
    q_local = qw / tp

    # --- matmuls (forward); backward = dgrad + wgrad = 2x the same shapes
    if shape.is_mla:
        attn_weights = arch.attention_params(shape)
        g_attn = gemm_seconds(T, attn_weights / h / tp, h, cluster, nbytes=c)
        w_attn = attn_weights
    else:
        g_attn = gemm_seconds(T, q_local + 2 * kv_local, h, cluster, nbytes=c) + gemm_seconds(T, h, q_local, cluster, nbytes=c)
        w_attn = h * (qw + 2 * kvw) + qw * h
    n_in = 2 if gated else 1
    if moe:
        E, k, fe = shape.experts, shape.experts_per_token, shape.d_expert
        local = E / ep
        Me = T * k * ep / E  # tokens per local expert (balanced routing); experts split over tp like the dense MLP
        g_mlp = local * (gemm_seconds(Me, n_in * fe / tp, h, cluster, nbytes=c) + gemm_seconds(Me, h, fe / tp, cluster, nbytes=c))
        g_mlp = g_mlp + gemm_seconds(T, E, h, cluster, nbytes=c)  # router
        w_mlp = (k + shape.shared_experts) * (n_in + 1) * h * fe + E * h
        if shape.shared_experts:
            fs = shape.shared_experts * fe
            g_mlp = g_mlp + gemm_seconds(T, n_in * fs / tp, h, cluster, nbytes=c) + gemm_seconds(T, h, fs / tp, cluster, nbytes=c)
        act_width = (k + shape.shared_experts) * fe / tp
    else:
        g_mlp = gemm_seconds(T, n_in * ffn / tp, h, cluster, nbytes=c) + gemm_seconds(T, h, ffn / tp, cluster, nbytes=c)
        w_mlp = (n_in + 1) * h * ffn
        act_width = ffn / tp
    gemm_f = g_attn + g_mlp

    # --- attention scores QK^T and A·V: this rank's T queries against all s keys (CP gathers them)
    score_flops = 4.0 * T * s * q_local  # forward, full matrix (PaLM App. B counts it so)
    heads_local = shape.heads / tp
    if run.attention == "flash":
        # causal kernels skip the masked half (FlashAttention-2 §3.1)
        attn_f = 0.5 * score_flops / (cluster.peak_flops_per_second * FLASH_EFFICIENCY)
        attn_b = FLASH_BACKWARD_RATIO * attn_f
        attn_selective = 0 * attn_f  # flash already recomputes the scores in its backward
    else:
        # Megatron: batched GEMMs over every (b, head), full s x s (masked half computed), fused softmax
        vw = hd
        bmm = (gemm_seconds(T / b, s, hd, cluster, batch=b * heads_local, nbytes=c)
               + gemm_seconds(T / b, vw, s, cluster, batch=b * heads_local, nbytes=c))
        scores = T * s * heads_local  # elements of the score matrix on this rank
        fwd_bytes = scores * (2 * c + run.dropout * (2 * c + 1))  # softmax r/w; dropout r/w + 1-byte mask
        bwd_bytes = scores * (3 * c + run.dropout * (2 * c + 1))
        attn_f = bmm + elementwise_seconds(fwd_bytes, cluster)
        attn_b = 2 * bmm + elementwise_seconds(bwd_bytes, cluster)
        attn_selective = attn_f  # selective recomputation reruns exactly this (Korthikanti et al. 2022 §5)

    # --- element-wise work per layer (forward bytes); sequence parallelism splits the h-wide ops by tp
    h_ops = _where(sp, h / tp, h) * T
    norm = 2 * (2 * c) * h_ops  # two norms: read x, write y
    residual = 2 * (3 * c + run.dropout * 1) * h_ops  # (bias-dropout-)add: read 2, write 1 (+ mask)
    activation = T * act_width * ((3 * c) if gated else (2 * c))  # act(gate)·up: read 2 write 1; gelu: read 1 write 1
    rotary = (shape.positions == "rotary") * T * (q_local + kv_local) * 2 * c
    permute = 2 * 2 * T * shape.experts_per_token * h * c if moe else 0  # permute/unpermute copies around the experts
    elem_f = elementwise_seconds(norm + residual + activation + rotary + permute, cluster)
    elem_b = ELEMENTWISE_BACKWARD_RATIO * elem_f

    forward = gemm_f + attn_f + elem_f
    backward = 2 * gemm_f + attn_b + elem_b

    # --- tensor-parallel collectives: 2 forward + 2 backward all-reduces of T·h (or AG + RS with SP)
    buf = T * h * c
    one = _where(sp, 2 * all_gather_seconds(buf, tp, tp, cluster), all_reduce_seconds(buf, tp, tp, cluster))
    tp_fwd = 2 * one
    tp_bwd = 2 * one

    # --- recomputation
    full = layout.recompute == "full" if isinstance(layout.recompute, str) else (layout.recompute == 2)
    selective = layout.recompute == "selective" if isinstance(layout.recompute, str) else (layout.recompute == 1)
    recompute = full * forward + selective * attn_selective
    tp_re = full * tp_fwd

    # --- context parallel: K and V chunks go round the ring (cp-1 hops) forward; K, V, dK, dV backward;
    # overlapped with the attention of the chunk in hand (Megatron-Core context_parallel).
    kv_chunk = T * 2 * kv_local * c
    hop = p2p_seconds(kv_chunk, tp * cp > cluster.gpus_per_node, cluster)
    cp_f = (cp > 1) * _max((cp - 1) * hop - attn_f, 0)
    cp_b = (cp > 1) * _max(2 * (cp - 1) * hop - attn_b, 0)
    cp_comm = cp_f + cp_b + full * cp_f

    # --- expert parallel: dispatch + combine all-to-all forward, the same backward
    if moe:
        a2a = all_to_all_seconds(T * shape.experts_per_token * h * c, ep, tp * cp * ep, cluster)
        ep_comm = (4 + full * 2) * a2a
    else:
        ep_comm = 0 * T

    # --- recomputed FLOPs (per micro-batch, this GPU's share); the model FLOPs of a step are counted
    # once for the whole model in step_time (PaLM App. B)
    w_local = (w_attn + w_mlp) / tp
    fwd_flops = 2 * T * w_local + score_flops
    recompute_flops = full * fwd_flops + selective * (run.attention == "eager") * score_flops
    return LayerCost(forward, backward, recompute, tp_fwd + tp_bwd + tp_re, cp_comm, ep_comm, recompute_flops)


def cross_entropy_bytes_per_logit(c):
    """Bytes per logit of Megatron's vocab-parallel cross-entropy on fp32 logits (megatron/mpu/cross_entropy.py,
    the default without --fp16-lm-cross-entropy), each step a separate kernel: forward casts the c-byte
    logits to fp32 (c + 4), max (4), subtract in place (8), exp in place (8), sum (4), divide in place (8);
    backward scales the saved softmax by the loss gradient in place (8) and casts it back (4 + c)."""
    return (c + 4) + 4 + 8 + 8 + 4 + 8 + 8 + (4 + c)


def head_cost(shape, run: Run, layout, cluster: Cluster):
    """Seconds of the last stage's extra work per micro-batch: final norm, logits, loss.

    Logits: a T x h by h x V/tp GEMM forward, two backward (Megatron vocab-parallel output layer);
    the cross-entropy in fp32 as cross_entropy_bytes_per_logit counts it. The first stage's embedding
    lookup is T·h reads and writes, negligible in comparison.
    """
    c = run.compute_bytes
    T = layout.micro_batch * run.seq / layout.cp
    h, V = shape.d_model, shape.vocab
    logits = gemm_seconds(T, V / layout.tp, h, cluster, nbytes=c)
    loss = elementwise_seconds(T * V / layout.tp * cross_entropy_bytes_per_logit(c) + 3 * 2 * c * T * h, cluster)
    return 3 * logits + loss


# ---------------------------------------------------------------------------- the step

# ---------------------------------------------------------------------------- which layouts exist

def divisors(n: int) -> list[int]:
    return [k for k in range(1, n + 1) if n % k == 0]


def _nearest(value: int, allowed: list[int]) -> int:
    return min(allowed, key=lambda k: (abs(k - value), k))


def check_layout(shape, run, layout, gpus: int | None = None) -> None:
    """InputError (exit 2) naming the broken constraint and the nearest layout that keeps it."""
    for name in ("tp", "pp", "vp", "dp", "cp", "ep", "micro_batch"):
        value = getattr(layout, name)
        if int(value) != value or value < 1:
            raise InputError(f"--{name.replace('_', '-')} must be a positive whole number, not {value}")
    if layout.zero not in (0, 1, 2, 3):
        raise InputError(f"--zero {layout.zero} does not exist; use 0, 1, 2 or 3 (FSDP full sharding is 3)")
    if layout.recompute not in RECOMPUTE:
        raise InputError(f"--recompute {layout.recompute!r}: use none, selective or full")
    if run.seq < 1 or run.global_batch < 1:
        raise InputError("--seq and the global batch must be positive")
    heads, L = shape.heads, shape.layers
    if heads % layout.tp:
        raise InputError(f"--tp {layout.tp} does not divide the {heads} attention heads; try --tp {_nearest(layout.tp, divisors(heads))}")
    if layout.pp > L or L % layout.pp:
        raise InputError(f"--pp {layout.pp} does not divide the {L} layers; try --pp {_nearest(layout.pp, divisors(L))}")
    per_stage = L // layout.pp
    if layout.vp > 1 and layout.pp == 1:
        raise InputError("--vp (virtual pipeline stages) needs --pp 2 or more; drop --vp or add --pp")
    if per_stage % layout.vp:
        raise InputError(f"--vp {layout.vp} does not divide the {per_stage} layers of each pipeline stage; try --vp {_nearest(layout.vp, divisors(per_stage))}")
    if run.seq % layout.cp:
        raise InputError(f"--cp {layout.cp} does not divide --seq {run.seq}; try --cp {_nearest(layout.cp, divisors(run.seq))}")
    if layout.ep > 1:
        if not shape.experts:
            raise InputError(f"--ep {layout.ep} needs a mixture-of-experts model; this one has no experts (use --ep 1)")
        if shape.experts % layout.ep:
            raise InputError(f"--ep {layout.ep} does not divide the {shape.experts} experts; try --ep {_nearest(layout.ep, divisors(shape.experts))}")
    if gpus is not None and layout.gpus != gpus:
        mp = layout.tp * layout.pp * layout.cp
        if gpus % mp:
            raise InputError(f"--gpus {gpus} is not a multiple of tp x pp x cp = {mp}; try --gpus {max(mp, gpus // mp * mp)} or a tp/pp/cp whose product divides {gpus}")
        raise InputError(f"tp x pp x cp x dp = {layout.gpus} is not --gpus {gpus}")
    if layout.ep > 1 and (layout.dp * layout.cp) % layout.ep:
        raise InputError(f"--ep {layout.ep} must divide dp x cp = {layout.dp * layout.cp} (expert groups are carved out of the data-parallel ranks); "
                         f"try --ep {_nearest(layout.ep, [k for k in divisors(layout.dp * layout.cp) if shape.experts % k == 0])}")
    replicas = layout.dp * layout.micro_batch
    if run.global_batch % replicas:
        fits = [k for k in divisors(max(1, run.global_batch // layout.dp)) if run.global_batch % (layout.dp * k) == 0] or [1]
        hint = f"try --micro-batch {_nearest(layout.micro_batch, fits)}" if run.global_batch % layout.dp == 0 else \
            f"try a global batch that is a multiple of dp = {layout.dp}, e.g. {(run.global_batch // layout.dp + 1) * layout.dp}"
        raise InputError(f"the global batch of {run.global_batch} sequences does not split into dp = {layout.dp} replicas x micro-batch {layout.micro_batch}; {hint}")
    m = run.global_batch // replicas
    if layout.vp > 1 and m % layout.pp:
        raise InputError(f"the interleaved schedule (--vp {layout.vp}) needs the {m} micro-batches per replica to be a multiple of --pp {layout.pp}; "
                         f"change --micro-batch or the global batch, or use --vp 1")


def _expert_params(shape) -> float:
    """Parameters of the routed experts (split over ep ranks); 0 for a dense model."""
    if not shape.is_moe:
        return 0
    n_in = 2 if shape.mlp in ("swiglu", "geglu") else 1
    return (shape.layers - shape.dense_layers) * shape.experts * (n_in + 1) * shape.d_model * shape.d_expert


def _moe_layers(shape) -> tuple[int, int]:
    if not shape.is_moe:
        return shape.layers, 0
    return shape.dense_layers, shape.layers - shape.dense_layers


def step_time(shape, run: Run, layout: Layout, cluster: Cluster, check: bool = True) -> StepTime:
    """One training step of `run.global_batch` sequences on layout.gpus GPUs. Fields may be arrays."""
    from llmplan.model import arch

    if check:
        check_layout(shape, run, layout)
        cluster.require_links(layout.gpus)
    tp, pp, vp, dp, cp, ep = layout.tp, layout.pp, layout.vp, layout.dp, layout.cp, layout.ep
    b = layout.micro_batch
    m = run.global_batch / (dp * b)  # micro-batches per replica per step
    dense_n, moe_n = _moe_layers(shape)
    dense = layer_cost(shape, run, layout, cluster, moe=False)
    parts = [(dense, dense_n)]
    if moe_n:
        parts.append((layer_cost(shape, run, layout, cluster, moe=True), moe_n))
    L = shape.layers
    per = lambda attr: sum(getattr(cost, attr) * n for cost, n in parts) / pp  # per stage (balanced layers)
    head_s = head_cost(shape, run, layout, cluster)

    compute_stage = per("forward") + per("backward") + per("recompute") + head_s  # slowest stage: the last
    tp_stage, cp_stage, ep_stage = per("tp_comm"), per("cp_comm"), per("ep_comm")
    # pipeline: activations T·h (scatter/gather optimisation, /tp: Narayanan et al. 2021 §4.1) forward and
    # gradients backward, once per virtual stage per micro-batch
    T = b * run.seq / cp
    act_bytes = T * shape.d_model * run.compute_bytes / tp
    pp_crosses = tp * cp * dp * 2 > cluster.gpus_per_node  # neighbouring stages sit dp·cp·tp ranks apart
    # without sequence parallelism the receiver all-gathers the 1/tp slices over NVLink to rebuild T·h
    # (Narayanan et al. 2021 §4.1, scatter/gather); with it the stage boundary is already sequence-sharded
    regather = _where(layout.sequence_parallel, 0, all_gather_seconds(act_bytes * tp, tp, tp, cluster))
    pp_stage = (pp > 1) * 2 * vp * (p2p_seconds(act_bytes, pp_crosses, cluster) + regather)
    # gradient accumulation into the fp32 buffer, every micro-batch, for this GPU's parameters
    P_all = arch.params(shape)
    P_exp = _expert_params(shape)
    P_dense = (P_all - P_exp) / (tp * pp)
    P_exp_local = P_exp / (tp * pp * ep)
    P_local = P_dense + P_exp_local
    accumulate = elementwise_seconds(P_local / _where(layout.zero >= 2, dp * cp, 1) * GRAD_ACCUMULATION_BYTES_PER_PARAM, cluster)
    compute_stage = compute_stage + accumulate
    t_stage = compute_stage + tp_stage + cp_stage + ep_stage + pp_stage

    steady = m * t_stage
    bubble = (pp - 1) / vp * t_stage  # Narayanan et al. 2021 §2.2.2: (p-1)/v of (t_f + t_b) per micro-batch

    # --- data parallel: gradients of this GPU's parameters over dp·cp ranks (experts over dp·cp/ep)
    g = run.compute_bytes
    span_dp = tp * cp * dp  # Megatron rank order tp, cp, dp, pp: a dp group spans tp·cp·dp GPUs
    n_dp = dp * cp
    n_edp = n_dp / ep
    zero = layout.zero
    layers_stage = L / pp
    # Gradients go in buckets, one collective each (Megatron-Core DistributedDataParallelConfig:
    # bucket_size = max(40M, 1M x dp) parameters), so the latency is paid per bucket.
    bucket = _max(40e6, 1e6 * n_dp)

    def bucketed(collective, params, n):
        k = _max(params / bucket, 1)
        return (params > 0) * k * collective(params * g / k, n, span_dp, cluster), k

    ar_d, k_d = bucketed(all_reduce_seconds, P_dense, n_dp)
    ar_e, _ = bucketed(all_reduce_seconds, P_exp_local, n_edp)
    rs_d, _ = bucketed(all_gather_seconds, P_dense, n_dp)
    rs_e, _ = bucketed(all_gather_seconds, P_exp_local, n_edp)
    # ZeRO 0: all-reduce (ring or tree). ZeRO 1/2 (distributed optimizer): reduce-scatter the gradients,
    # all-gather the updated weights: ring collectives of the same total volume (Rajbhandari et al. 2020 §7).
    z3 = zero == 3
    t_dp_step = (1 - z3) * _where(zero >= 1, 2 * (rs_d + rs_e), ar_d + ar_e)
    # ZeRO-3/FSDP, one unit per layer: every micro-batch gathers each layer's weights forward and again
    # backward and reduce-scatters its gradients (§5.3), three collectives per layer, latency each.
    per_layer = lambda params, n: (params > 0) * all_gather_seconds(params / layers_stage * g, n, span_dp, cluster)
    layer_collectives = 3 * (per_layer(P_dense, n_dp) + per_layer(P_exp_local, n_edp))
    t_dp_mb = z3 * layers_stage * layer_collectives
    bwd_stage = per("backward")
    window = run.overlap_dp * bwd_stage  # the last micro-batch's backward hides the bucketed reduction
    exposed_step = _max(t_dp_step - window, t_dp_step / k_d * run.overlap_dp)  # the last bucket cannot hide
    # ZeRO-3: each micro-batch's collectives hide behind its own compute, all but the first layer's
    fsdp_window = run.overlap_dp * compute_stage
    exposed_mb = _max(t_dp_mb - fsdp_window, z3 * layer_collectives)
    dp_exposed = (n_dp > 1) * (exposed_step + z3 * m * exposed_mb)

    # --- optimizer step: this GPU's share of the parameters (ZeRO >= 1 shards it over dp·cp)
    shard = _where(zero >= 1, n_dp, 1)
    optimizer = elementwise_seconds(P_local / shard * ADAM_BYTES_PER_PARAM, cluster)

    step = steady + bubble + dp_exposed + optimizer
    tokens = run.global_batch * run.seq
    gpus = tp * pp * cp * dp
    # model FLOPs per step (PaLM App. B: 6N + 12·L·H·Q·T per token; arch.flops_per_token "matmul")
    model_flops = arch.flops_per_token(shape, run.seq)["matmul"] * tokens
    recompute_flops = sum(cost.recompute_flops * n for cost, n in parts) * tp * cp * m * dp  # per layer per rank -> all
    hardware_flops = model_flops + recompute_flops
    peak = cluster.peak_flops_per_second
    return StepTime(
        step_seconds=step,
        tokens_per_second=tokens / step,
        tokens_per_second_per_gpu=tokens / step / gpus,
        model_flops_per_second_per_gpu=model_flops / step / gpus,
        hardware_flops_per_second_per_gpu=hardware_flops / step / gpus,
        mfu=model_flops / step / gpus / peak,
        hfu=hardware_flops / step / gpus / peak,
        compute_seconds=m * compute_stage,
        tp_comm_seconds=m * tp_stage,
        pp_comm_seconds=m * pp_stage,
        bubble_seconds=bubble,
        dp_comm_seconds=dp_exposed,
        cp_comm_seconds=m * cp_stage,
        ep_comm_seconds=m * ep_stage,
        optimizer_seconds=optimizer,
        micro_batches=m,
        model_flops=model_flops,
        hardware_flops=hardware_flops,
    )
