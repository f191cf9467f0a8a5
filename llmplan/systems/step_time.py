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
The GPU is llmplan.systems.gpu, the collectives llmplan.systems.collectives, what a layout is
llmplan.systems.layout.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from llmplan.records import record
from llmplan.systems._arith import maximum, where
from llmplan.systems.collectives import all_gather_seconds, all_reduce_seconds, all_to_all_seconds, p2p_seconds
from llmplan.systems.gpu import TILE, GPU, quantised_tiles
from llmplan.systems import kernels
from llmplan.systems.layout import Layout, Run, check_layout, stage_layers

# FlashAttention-2 forward+backward reaches 50-73% of the A100's peak (Dao 2023, "FlashAttention-2",
# abstract and Fig. 4-6, head dim 128, causal); the middle of that range.
FLASH_EFFICIENCY = 0.6
# Backward of flash attention: 5 matmuls (S recomputed, dV, dP, dQ, dK) against 2 forward (Dao 2023, Alg. 2).
FLASH_BACKWARD_RATIO = 2.5
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


@record(frozen=False)
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
    # compute_seconds, kernel by kernel (they add up to it): matmuls (the layers' and the output head's), the attention
    # core, memory-bound element-wise work (norms, activations, rotary, residuals, the loss, gradient accumulation),
    # activation recomputation, and the rest: host issue time beyond the GPU's, SMs held by hidden collectives and the
    # slowest GPU's shortfall
    matmul_seconds: float = 0.0
    attention_seconds: float = 0.0
    elementwise_seconds: float = 0.0
    recompute_seconds: float = 0.0
    compute_other_seconds: float = 0.0

    PARTS = ("compute", "tp_comm", "pp_comm", "bubble", "dp_comm", "cp_comm", "ep_comm", "optimizer")
    COMPUTE_PARTS = ("matmul", "attention", "elementwise", "recompute", "compute_other")

    def row(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        for part in self.PARTS:
            out[f"{part}_fraction"] = getattr(self, f"{part}_seconds") / self.step_seconds
        return out


# ---------------------------------------------------------------------------- compute

def gemm_seconds(M, N, K, cluster: GPU, batch=1, nbytes=2, fp8_cast=0):
    """One (batched) GEMM C[M,N] = A[M,K]·B[K,N]: padded FLOPs / achievable rate + bytes / HBM.

    The two sides of the roofline (Williams, Waterman & Patterson 2009) added rather than maxed: a
    GEMM near the ridge point reaches about half the kinked roofline, as measured GEMM-vs-intensity
    curves show, and a large square GEMM loses only its operand traffic (a few %). Output tiles are
    padded to TILE (NVIDIA "Matrix Multiplication Background", tile quantisation). The math rate is
    calibrated on the measured reference GEMM (GPU.matmul_rate): an 8192-cubed bf16 GEMM runs at
    exactly peak · matmul_efficiency.
    """
    flops = 2.0 * quantised_tiles(M, N, batch, cluster.sms) * TILE * TILE * K
    moved = (M * K + K * N + M * N) * nbytes * batch
    t = flops / cluster.matmul_rate + moved / cluster.hbm_rate
    if cluster.dtype == "fp8" and fp8_cast:
        # fp8: operands in 1 byte, output in 16 bits, plus quantising both operands (amax and cast traffic,
        # presets/kernels.toml); a GEMM too small to gain stays in bf16 (torchao's filter: "leave this linear in
        # bfloat16", pytorch/ao torchao/float8/README.md), so the faster of the two.
        t8 = flops / cluster.matmul_rate + ((M * K + K * N) * (1 + fp8_cast) + M * N * nbytes) * batch / cluster.hbm_rate
        t16 = flops / cluster.bf16_matmul_rate + moved / cluster.hbm_rate
        t = (t8 + t16 - abs(t8 - t16)) / 2
    elif cluster.dtype == "fp8":
        t = flops / cluster.bf16_matmul_rate + moved / cluster.hbm_rate  # attention bmm and others stay 16-bit
    # No GEMM outruns the GPU's best measured matmul (MAMF, a brute-force search over shapes): tile and wave
    # quantisation calibrated on the reference GEMM would otherwise let a luckier shape pass it.
    useful = 2.0 * M * N * K * batch
    if cluster.dtype == "fp8" and fp8_cast:  # each of the two candidates capped by its own dtype's best
        t8 = maximum(t8, useful / cluster.best_matmul_flops)
        t16 = maximum(t16, useful / cluster.best_bf16_matmul_flops)
        t = (t8 + t16 - abs(t8 - t16)) / 2
    else:
        t = maximum(t, useful / cluster.best_bf16_matmul_flops)
    return maximum(t, kernels.gemm_floor())  # a launch takes at least the measured floor (XLA sm_90 table)


def comm_sm_share(cluster: GPU):
    """Extra compute seconds per second of communication hidden behind it: the collective's kernels hold
    comm_sms of the GPU's SMs while they run, and the compute they overlap runs on the rest (presets/kernels.toml
    [collectives]); 0 where the SM count is unknown."""
    sms = cluster.sms or 0
    return kernels.comm_sms() / sms if sms else 0.0


def elementwise_seconds(nbytes, cluster: GPU):
    """Memory-bound work: bytes moved / achievable HBM bandwidth (the roofline's memory side)."""
    return nbytes / cluster.hbm_rate


# ---------------------------------------------------------------------------- one layer

@record(frozen=False)
class LayerCost:
    """Seconds of one decoder layer for one micro-batch on one GPU, split the way the step reports it."""

    forward: Any  # compute (matmuls, attention, element-wise) of the forward pass
    backward: Any
    recompute: Any  # extra forward compute for activation recomputation
    tp_comm: Any  # forward + backward + recompute TP collectives
    cp_comm: Any  # exposed part of the ring exchange
    ep_comm: Any
    recompute_flops: Any
    matmul: Any = 0.0  # of forward + backward: the GEMMs
    attention: Any = 0.0  # the attention core, forward and backward
    elementwise: Any = 0.0  # memory-bound work, forward and backward
    elementwise_forward: Any = 0.0  # of which forward


def _widths(shape):
    """(query width, kv width, d_ffn, gated) of a decoder layer; MLA as its per-head q/k and v widths."""
    if shape.is_mla:
        qk = shape.heads * (shape.qk_nope_head_dim + shape.qk_rope_head_dim)
        return qk, (shape.heads * shape.v_head_dim + qk) / 2, shape.d_ffn, shape.mlp in ("swiglu", "geglu")
    return shape.attn_width, shape.kv_width, shape.d_ffn, shape.mlp in ("swiglu", "geglu")


def _is(value, name: str, code: int):
    """layout.recompute == name, whether it is the string or the search's integer code."""
    return value == name if isinstance(value, str) else (value == code)


def attention_seconds(score_flops, s, hd, run: Run, cluster: GPU):
    """(forward, backward) seconds of a causal flash-style attention core whose full score matrix is `score_flops`
    forward FLOPs: the stack's kernel (presets/stacks.toml) at its measured rate on this GPU for this sequence
    length and head dimension (presets/kernels.toml); causal kernels skip the masked half and the backward is
    2.5x the forward's FLOPs (FlashAttention's own count). A GPU or kernel with no measurement takes
    FLASH_EFFICIENCY of the 16-bit peak (the old A100-derived fraction; the row says it is uncalibrated)."""
    stack = run.software
    kernel = kernels.attention_kernel(stack.attention, cluster.arch)
    rates = kernels.attention_rate(kernel, cluster.arch, s, int(hd))
    causal = 0.5 * score_flops
    if rates is None:
        rate = (cluster.bf16_peak or cluster.peak_flops_per_second) * FLASH_EFFICIENCY
        return causal / rate, FLASH_BACKWARD_RATIO * causal / rate
    fwd, bwd = rates  # measured in bursts at the boost clock: a sustained step holds the clock lower (GPU.clock_ratio)
    return causal / (fwd * cluster.clock_ratio), FLASH_BACKWARD_RATIO * causal / (bwd * cluster.clock_ratio)


def layer_cost(shape, run: Run, layout, cluster: GPU, moe: bool = False) -> LayerCost:
    """One layer, one micro-batch, one GPU. `layout` fields may be numpy arrays (the search)."""
    from llmplan.model import arch

    stack = run.software
    tp, cp, ep, b = layout.tp, layout.cp, layout.ep, layout.micro_batch
    sp = layout.sequence_parallel
    c = run.compute_bytes
    cast = kernels.fp8_cast_bytes(stack.fp8_recipe) if stack.fp8_recipe != "none" else 0
    s = run.seq
    h = shape.d_model
    T = b * s / cp  # tokens of this GPU's micro-batch
    qw, kvw, ffn, gated = _widths(shape)
    hd = shape.d_head if not shape.is_mla else qw / shape.heads
    kv_local = maximum(kvw / tp, hd)  # fewer KV heads than tp ranks: each rank keeps one head (replicated)
    q_local = qw / tp
    G = lambda M, N, K: gemm_seconds(M, N, K, cluster, nbytes=c, fp8_cast=cast)

    # --- matmuls (forward); backward = dgrad + wgrad = 2x the same shapes
    if shape.is_mla:
        attn_weights = arch.attention_params(shape)
        g_attn = G(T, attn_weights / h / tp, h)
        w_attn = attn_weights
    else:
        g_attn = G(T, q_local + 2 * kv_local, h) + G(T, h, q_local)
        w_attn = h * (qw + 2 * kvw) + qw * h
    n_in = 2 if gated else 1
    if moe:
        E, k, fe = shape.experts, shape.experts_per_token, shape.d_expert
        local = E / ep
        Me = T * k * ep / E  # tokens per local expert (balanced routing); experts split over tp like the dense MLP
        g_mlp = local * (G(Me, n_in * fe / tp, h) + G(Me, h, fe / tp))
        g_mlp = g_mlp + gemm_seconds(T, E, h, cluster, nbytes=c)  # router
        w_mlp = (k + shape.shared_experts) * (n_in + 1) * h * fe + E * h
        if shape.shared_experts:
            fs = shape.shared_experts * fe
            g_mlp = g_mlp + G(T, n_in * fs / tp, h) + G(T, h, fs / tp)
        act_width = (k + shape.shared_experts) * fe / tp
    else:
        g_mlp = G(T, n_in * ffn / tp, h) + G(T, h, ffn / tp)
        w_mlp = (n_in + 1) * h * ffn
        act_width = ffn / tp
    gemm_f = g_attn + g_mlp

    # --- attention scores QK^T and A·V: this rank's T queries against all s keys (CP gathers them)
    score_flops = 4.0 * T * s * q_local  # forward, full matrix (PaLM App. B counts it so)
    heads_local = shape.heads / tp
    if run.attention == "flash":
        attn_f, attn_b = attention_seconds(score_flops, s / cp, hd, run, cluster)
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

    # --- element-wise work per layer, forward and backward bytes op by op (presets/kernels.toml [elementwise], bytes per
    # bf16 element, counted from the ops the stacks launch); sequence parallelism splits the h-wide ops by tp.
    ew = kernels.elementwise()
    eager = stack.eager
    unit = c / 2  # the table's bytes are per bf16 element
    norm_kind = "eager" if stack.norm == "eager" and not stack.compiled and shape.norm == "rmsnorm" else "fused"
    act_kind = "eager" if eager else "fused"
    h_ops = where(sp, h / tp, h) * T
    norm_f = 2 * ew[f"norm_{norm_kind}"] * unit * h_ops  # two norms per layer
    norm_b = 2 * ew[f"norm_{norm_kind}_backward"] * unit * h_ops
    residual_f = 2 * (3 * c + run.dropout * 1) * h_ops  # (bias-dropout-)add: read 2, write 1 (+ mask)
    residual_b = 2 * run.dropout * (2 * c + 1) * h_ops  # an add's gradient passes through; dropout's reads its mask
    if gated:  # act(gate)·up
        act_f = ew[f"swiglu_{act_kind}"] * unit * T * act_width
        act_b = ew[f"swiglu_{act_kind}_backward"] * unit * T * act_width
    else:  # gelu: read 1 write 1; backward reads input and gradient, writes one
        act_f = 2 * c * T * act_width
        act_b = 3 * c * T * act_width
    rotary_f = (shape.positions == "rotary") * ew[f"rotary_{act_kind}"] * unit * T * (q_local + kv_local)
    rotary_b = ew["rotary_backward_ratio"] * rotary_f
    # K and V copied to every query head before attention (repeat_kv) and summed back in backward, where the stack's
    # model does so (presets/stacks.toml gqa_repeat_kv)
    repeat_kv = stack.gqa_repeat_kv * (kv_local < q_local) * 2 * T * (q_local + kv_local) * c
    # backward merges the gradients of a tensor used twice with an add (read 2, write 1): the residual stream at each
    # branch, and, unfused, the input of separate q/k/v and gate/up projections
    separate = stack.separate_projections and not stack.compiled
    # (the residual stream is sequence-split under SP; the projections' shared input is gathered whole first)
    projection_merges = separate * (ew["gradient_merges_separate_qkv"] + gated * ew["gradient_merges_separate_gate_up"])
    merges_b = (ew["gradient_merges_residual"] * h_ops + projection_merges * T * h) * 3 * c
    permute = 2 * 2 * T * shape.experts_per_token * h * c if moe else 0  # permute/unpermute copies around the experts
    elem_f = elementwise_seconds(norm_f + residual_f + act_f + rotary_f + repeat_kv + permute, cluster)
    elem_b = elementwise_seconds(norm_b + residual_b + act_b + rotary_b + repeat_kv + ELEMENTWISE_BACKWARD_RATIO * permute + merges_b,
                                 cluster)

    # --- a layer takes the longer of the GPU's time and the host's time to issue its kernels (eager PyTorch
    # launches one kernel per op; presets/kernels.toml [host])
    host = kernels.host()
    issue_f = (host["eager_ops_forward"] if eager else host["fused_ops_forward"]) * host["op_seconds"]
    issue_b = (host["eager_ops_backward"] if eager else host["fused_ops_backward"]) * host["op_seconds"]
    forward = maximum(gemm_f + attn_f + elem_f, issue_f)
    backward = maximum(2 * gemm_f + attn_b + elem_b, issue_b)

    # --- tensor-parallel collectives: 2 forward + 2 backward all-reduces of T·h (or AG + RS with SP)
    buf = T * h * c
    one = where(sp, 2 * all_gather_seconds(buf, tp, tp, cluster), all_reduce_seconds(buf, tp, tp, cluster))
    tp_fwd = 2 * one
    tp_bwd = 2 * one
    if stack.tp_comm_overlap:  # TE userbuffers: TP collectives pipelined with the GEMMs they feed
        hidden_f, hidden_b = tp_fwd - maximum(tp_fwd - gemm_f, 0 * tp_fwd), tp_bwd - maximum(tp_bwd - 2 * gemm_f, 0 * tp_bwd)
        tp_fwd, tp_bwd = tp_fwd - hidden_f, tp_bwd - hidden_b
        # the communication kernels hold SMs while they run: the GEMMs they hide behind lose that share
        forward = forward + comm_sm_share(cluster) * hidden_f
        backward = backward + comm_sm_share(cluster) * hidden_b

    # --- recomputation: what "selective" means is the stack's (presets/stacks.toml selective_recompute)
    full = _is(layout.recompute, "full", 2)
    selective = _is(layout.recompute, "selective", 1)
    policy = stack.selective_recompute
    if policy == "per-block":  # llm-foundry, DeepSpeed, HF checkpointing: whole blocks, as full
        full, selective = full + selective, 0 * selective
    op_level = selective * (policy == "op-level")
    core = selective * (policy == "attention-core")
    w_local = (w_attn + w_mlp) / tp
    if policy == "op-level" and not moe and not shape.is_mla:
        # torchtitan: every second mm is rerun (wk, wo, w3 in forward order) with the element-wise ops between
        up = ffn / tp if gated else 0.5 * ffn / tp
        op_gemm = G(T, kv_local, h) + G(T, h, q_local) + G(T, up, h)
        op_flops = 2 * T * (kv_local * h + h * q_local + up * h)
    else:
        op_gemm, op_flops = 0.5 * gemm_f, T * w_local
    recompute = full * forward + core * attn_selective + op_level * (op_gemm + elem_f)
    tp_re = full * tp_fwd

    # --- context parallel: K and V chunks go round the ring (cp-1 hops) forward; K, V, dK, dV backward;
    # overlapped with the attention of the chunk in hand (Megatron-Core context_parallel).
    kv_chunk = T * 2 * kv_local * c
    hop = p2p_seconds(kv_chunk, tp * cp > cluster.gpus_per_node, cluster)
    cp_f = (cp > 1) * maximum((cp - 1) * hop - attn_f, 0)
    cp_b = (cp > 1) * maximum(2 * (cp - 1) * hop - attn_b, 0)
    forward = forward + comm_sm_share(cluster) * (cp > 1) * ((cp - 1) * hop - cp_f)  # the hidden hops hold SMs too
    backward = backward + comm_sm_share(cluster) * (cp > 1) * (2 * (cp - 1) * hop - cp_b)
    cp_comm = cp_f + cp_b + full * cp_f

    # --- expert parallel: dispatch + combine all-to-all forward, the same backward
    if moe:
        a2a = all_to_all_seconds(T * shape.experts_per_token * h * c, ep, tp * cp * ep, cluster)
        ep_comm = (4 + full * 2) * a2a
    else:
        ep_comm = 0 * T

    # --- recomputed FLOPs (per micro-batch, this GPU's share); the model FLOPs of a step are counted
    # once for the whole model in step_time (PaLM App. B)
    fwd_flops = 2 * T * w_local + score_flops
    recompute_flops = full * fwd_flops + core * (run.attention == "eager") * score_flops + op_level * op_flops
    return LayerCost(forward, backward, recompute, tp_fwd + tp_bwd + tp_re, cp_comm, ep_comm, recompute_flops,
                     3 * gemm_f, attn_f + attn_b, elem_f + elem_b, elem_f)


def cross_entropy_bytes_per_logit(c):
    """Bytes per logit of Megatron's vocab-parallel cross-entropy on fp32 logits (megatron/mpu/cross_entropy.py,
    the default without --fp16-lm-cross-entropy), each step a separate kernel: forward casts the c-byte
    logits to fp32 (c + 4), max (4), subtract in place (8), exp in place (8), sum (4), divide in place (8);
    backward scales the saved softmax by the loss gradient in place (8) and casts it back (4 + c)."""
    return (c + 4) + 4 + 8 + 8 + 4 + 8 + 8 + (4 + c)


def head_cost(shape, run: Run, layout, cluster: GPU):
    """Seconds of the last stage's extra work per micro-batch: final norm, logits, loss; as (matmul, element-wise).

    Logits: a T x h by h x V/tp GEMM forward, two backward (Megatron vocab-parallel output layer);
    the cross-entropy in fp32 as cross_entropy_bytes_per_logit counts it. The first stage's embedding
    lookup is T·h reads and writes, negligible in comparison.
    """
    c = run.compute_bytes
    T = layout.micro_batch * run.seq / layout.cp
    h, V = shape.d_model, shape.vocab
    logits = gemm_seconds(T, V / layout.tp, h, cluster, nbytes=c)
    # a fused cross-entropy (flash_attn.ops.triton.cross_entropy) reads the logits forward, reads them again and
    # writes their gradient backward: 3c bytes per logit
    per_logit = 3 * c if run.software.fused_loss else cross_entropy_bytes_per_logit(c)
    loss = elementwise_seconds(T * V / layout.tp * per_logit + 3 * 2 * c * T * h, cluster)
    return 3 * logits, loss


# ---------------------------------------------------------------------------- the step

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


def step_time(shape, run: Run, layout: Layout, cluster: GPU, check: bool = True) -> StepTime:
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
    stack = run.software
    # Stage layer counts as the stack splits them (Llama 3 / Megatron: first and last stage one layer fewer);
    # the step is set by the busiest stage: a middle stage of `busiest` layers or the last with the output head.
    busiest, last = stage_layers(L, pp, stack.pipeline_split)
    per_layer = lambda attr: sum(getattr(cost, attr) * n for cost, n in parts) / L  # the average layer
    head_mm, head_loss = head_cost(shape, run, layout, cluster)
    head_s = head_mm + head_loss
    layer_work = per_layer("forward") + per_layer("backward") + per_layer("recompute")
    n_stage = where(busiest * layer_work >= last * layer_work + head_s, busiest, last)  # layers of the busiest stage
    with_head = (busiest * layer_work < last * layer_work + head_s) + (pp == 1) * 0
    per = lambda attr: per_layer(attr) * n_stage

    compute_stage = per("forward") + per("backward") + per("recompute") + with_head * head_s  # the busiest stage
    tp_stage, cp_stage, ep_stage = per("tp_comm"), per("cp_comm"), per("ep_comm")
    # pipeline: activations T·h (scatter/gather optimisation, /tp: Narayanan et al. 2021 §4.1) forward and
    # gradients backward, once per virtual stage per micro-batch
    T = b * run.seq / cp
    act_bytes = T * shape.d_model * run.compute_bytes / tp
    pp_crosses = tp * cp * dp * 2 > cluster.gpus_per_node  # neighbouring stages sit dp·cp·tp ranks apart
    # without sequence parallelism the receiver all-gathers the 1/tp slices over NVLink to rebuild T·h
    # (Narayanan et al. 2021 §4.1, scatter/gather); with it the stage boundary is already sequence-sharded
    regather = where(layout.sequence_parallel, 0, all_gather_seconds(act_bytes * tp, tp, tp, cluster))
    pp_stage = (pp > 1) * 2 * vp * (p2p_seconds(act_bytes, pp_crosses, cluster) + regather)
    # gradient accumulation into the fp32 buffer, every micro-batch, for this GPU's parameters
    P_all = arch.params(shape)
    P_exp = _expert_params(shape)
    P_dense = (P_all - P_exp) / (tp * pp)
    P_exp_local = P_exp / (tp * pp * ep)
    P_local = P_dense + P_exp_local
    accumulate = elementwise_seconds(P_local / where(layout.zero >= 2, dp * cp, 1) * GRAD_ACCUMULATION_BYTES_PER_PARAM, cluster)
    # the framework's own copies around its ZeRO collectives (presets/stacks.toml gather_copy_bytes, reduce_copy_bytes: FSDP2's
    # copy-out of the gathered parameters, the fp32 cast of the gradients), on the compute stream every micro-batch for this
    # GPU's unsharded parameters: ZeRO-3 gathers forward and again backward, ZeRO-2 once; both reduce-scatter the gradients
    zero_now = layout.zero
    gathers = where(zero_now == 3, 2, where(zero_now == 2, 1, 0))
    reduces = (zero_now == 3) + (zero_now == 2) * (stack.zero2_gradients == "reduce-scatter-per-micro-batch")
    framework_copies = elementwise_seconds(P_local * (gathers * stack.gather_copy_bytes + reduces * stack.reduce_copy_bytes), cluster)
    compute_stage = compute_stage + accumulate + framework_copies
    # a synchronous step waits for its slowest GPU: kernels run straggler_spread below the one measured GPU's rate
    # (presets/kernels.toml [gemm]); a single GPU waits for no other
    compute_stage = compute_stage / (1 - kernels.straggler_spread() * (tp * pp * cp * dp > 1))
    matmul_stage = per("matmul") + with_head * head_mm
    attention_stage = per("attention")
    elementwise_stage = per("elementwise") + with_head * head_loss + accumulate + framework_copies
    recompute_stage = per("recompute")
    t_stage = compute_stage + tp_stage + cp_stage + ep_stage + pp_stage

    steady = m * t_stage
    bubble = (pp - 1) / vp * t_stage  # Narayanan et al. 2021 §2.2.2: (p-1)/v of (t_f + t_b) per micro-batch

    # --- data parallel: gradients of this GPU's parameters over dp·cp ranks (experts over dp·cp/ep), reduced in the
    # stack's gradient dtype (fp32 in Megatron, FSDP2 and Composer under bf16: presets/stacks.toml grad_reduce_bytes);
    # parameters are gathered in the compute dtype
    g = run.compute_bytes
    g_red = stack.grad_reduce_bytes
    span_dp = tp * cp * dp  # Megatron rank order tp, cp, dp, pp: a dp group spans tp·cp·dp GPUs
    n_dp = dp * cp
    n_edp = n_dp / ep
    zero = layout.zero
    layers_stage = n_stage
    # Gradients go in buckets, one collective each (Megatron-Core DistributedDataParallelConfig:
    # bucket_size = max(40M, 1M x dp) parameters), so the latency is paid per bucket.
    bucket = maximum(40e6, 1e6 * n_dp)

    def bucketed(collective, params, n, nbytes):
        k = maximum(params / bucket, 1)
        return (params > 0) * k * collective(params * nbytes / k, n, span_dp, cluster), k

    ar_d, k_d = bucketed(all_reduce_seconds, P_dense, n_dp, g_red)
    ar_e, _ = bucketed(all_reduce_seconds, P_exp_local, n_edp, g_red)
    rs_d, _ = bucketed(all_gather_seconds, P_dense, n_dp, g_red)  # reduce-scatter of the gradients
    rs_e, _ = bucketed(all_gather_seconds, P_exp_local, n_edp, g_red)
    ag_d, _ = bucketed(all_gather_seconds, P_dense, n_dp, g)  # all-gather of the updated weights
    ag_e, _ = bucketed(all_gather_seconds, P_exp_local, n_edp, g)
    # ZeRO 0: all-reduce (ring or tree). ZeRO 1/2 (distributed optimizer): reduce-scatter the gradients,
    # all-gather the updated weights (Rajbhandari et al. 2020 §7): the all-reduce's volume, gradients in their dtype.
    z3 = zero == 3
    # ZeRO-2 as the stack runs it (presets/stacks.toml zero2_gradients): DeepSpeed and FSDP reduce-scatter each
    # micro-batch's gradients into the shard as backward produces them (deepspeed/runtime/zero/stage_1_and_2.py,
    # FSDP SHARD_GRAD_OP), so the reduction is paid every micro-batch; a stack that accumulates full gradients
    # reduces once per step (memory keeps them whole then).
    z2mb = (zero == 2) * (stack.zero2_gradients == "reduce-scatter-per-micro-batch")
    t_dp_step = (1 - z3) * where(zero >= 1, ag_d + ag_e + (1 - z2mb) * (rs_d + rs_e), ar_d + ar_e)
    # ZeRO-3/FSDP, one unit per layer: every micro-batch gathers each layer's weights forward and again
    # backward and reduce-scatters its gradients (§5.3), three collectives per layer, latency each; ZeRO-2
    # per micro-batch: the reduce-scatter only.
    per_unit = lambda params, n, nbytes: (params > 0) * all_gather_seconds(params / L * nbytes, n, span_dp, cluster)
    gather = per_unit(P_dense * pp, n_dp, g) + per_unit(P_exp_local * pp, n_edp, g)
    reduce = per_unit(P_dense * pp, n_dp, g_red) + per_unit(P_exp_local * pp, n_edp, g_red)
    layer_collectives = 2 * z3 * gather + (z3 + z2mb) * reduce
    t_dp_mb = layers_stage * layer_collectives
    bwd_stage = per("backward")
    overlap = run.overlap_dp * stack.overlap_grad_reduce
    window = overlap * bwd_stage  # the last micro-batch's backward hides the bucketed reduction
    # ZeRO-1/2's all-gather of the updated weights (half of t_dp_step) hides behind the next step's forward where
    # the stack overlaps it (Megatron --overlap-param-gather: each bucket gathered before its first use)
    gather_window = (zero >= 1) * (1 - z3) * run.overlap_dp * stack.overlap_param_gather * per("forward")
    exposed_step = maximum(t_dp_step - window - gather_window, t_dp_step / k_d * overlap)  # the last bucket cannot hide
    # each micro-batch's collectives hide behind its own compute (ZeRO-3: forward and backward, with the
    # stack's prefetch; ZeRO-2: its backward), all but one layer's
    fsdp_window = where(z3, run.overlap_dp * stack.overlap_param_gather * compute_stage, overlap * bwd_stage)
    exposed_mb = maximum(t_dp_mb - fsdp_window, layer_collectives)
    dp_exposed = (n_dp > 1) * (exposed_step + (z3 + z2mb) * m * exposed_mb)
    # the data-parallel collectives that hide behind compute hold SMs while they run: that compute loses their share
    dp_hidden = (n_dp > 1) * ((t_dp_step - exposed_step) + (z3 + z2mb) * m * (t_dp_mb - exposed_mb))
    dp_exposed = dp_exposed + comm_sm_share(cluster) * dp_hidden

    # --- optimizer step: this GPU's share of the parameters (ZeRO >= 1 shards it over dp·cp)
    shard = where(zero >= 1, n_dp, 1)
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
        matmul_seconds=m * matmul_stage,
        attention_seconds=m * attention_stage,
        elementwise_seconds=m * elementwise_stage,
        recompute_seconds=m * recompute_stage,
        compute_other_seconds=m * (compute_stage - matmul_stage - attention_stage - elementwise_stage - recompute_stage),
    )

