"""GPU memory for serving and training: weights, gradients, optimizer states, activations, KV cache.

The peak of a training step is modelled phase by phase (what is alive at the same time), not as a
sum of everything: the start of backward (all saved activations plus the fp32 gradients of the
logits), the walk down the layers (activations freed as gradients are written) and the optimizer
step (gradients plus the optimizer's temporaries). Activations come from `llmplan.systems.memory.activations`
(tensor by tensor) or, with `activations="korthikanti"`, from Korthikanti et al. 2022, Table 2.

What is kept per parameter (dtypes, states, ZeRO, optimizer temporaries) is `states`; the parameter
tensors, the allocator, the cuBLAS workspace and the CUDA context are `allocator`; what to try when a
request does not fit is `advice`. Pure functions, no printing. Sources: Pope et al. 2022 (KV cache) and
the H100 measurements in tests/data/gpu_memory_calibration.jsonl.
"""

from __future__ import annotations

import functools
from dataclasses import field

from llmplan.errors import InputError
from llmplan.records import record
from llmplan.systems.memory.activations import RECOMPUTE
from llmplan.systems.memory import activations as act
from llmplan.systems.memory.allocator import (ALLOCATOR_MARGIN, CONTEXT_BYTES, CUBLAS_WORKSPACE, expert_params, largest_tensor_params,
                                              linear_params_per_layer, lora_params, weights_bytes)
from llmplan.systems.memory.states import (OPTIMIZER_IMPLS, PRECISIONS, QUANTISED, adafactor_state_values, compute_bytes,
                                           default_optimizer_impl, dtype_bytes, optimizer_step_temporaries, state_bytes)

ATTENTION = act.ATTENTION


def kv_cache_bytes(shape, batch: int, context: int, bytes_per_value: float) -> float:
    """2 · L · n_kv · head_dim · s · b · bytes (GQA via n_kv; MLA latent), from arch.kv_cache_bytes_per_token."""
    from llmplan.model import arch

    return arch.kv_cache_bytes_per_token(shape, bytes_per_value) * batch * context


# ---------------------------------------------------------------------------- requests and results

@record
class Request:
    params: float | None = None
    shape: object = None
    dtype: str = "bf16"
    group_size: int = 128
    train: bool = False
    precision: str = "amp"
    optimizer: str = "adamw"
    optimizer_impl: str | None = None  # for-loop | foreach | fused; None: the stack's, else PyTorch's default (DEFAULT_OPTIMIZER_IMPL)
    stack_optimizer_impl: str | None = None  # what the software stack runs (presets/stacks.toml optimizer_impl)
    batch: int = 1
    seq: int | None = None  # training sequence / inference context
    kv_dtype: str | None = None
    recompute: str = "none"
    stage_layers: int | None = None  # layers of the busiest pipeline stage (uneven splits); None: layers / pp
    fp32_gradients: bool = False  # gradients kept in fp32 whatever the weights' dtype (Megatron's main_grad buffers)
    zero2_full_gradients: bool = False  # ZeRO-2 keeping whole gradients while accumulating (reduced once per step)
    fused_loss: bool = False  # one cross-entropy kernel on the 16-bit logits: no fp32 copy, no saved log-probs
    logits_kept: bool = True  # the caller holds the 16-bit logits through backward (HF outputs); False: freed once the loss is formed
    buffer_bytes: float = 0.0  # the framework's own communication buffers (DeepSpeed's reduce and all-gather buckets)
    fused_norms: bool = False  # the stack's norms are one kernel each (TE, Apex, torch.compile): input + statistics saved
    fused_mlp: bool | None = None  # the SwiGLU one kernel (saves its input only); None: as fused_norms
    selective: str = "attention-core"  # what the stack's "selective" keeps: attention-core (Megatron), op-level (torchtitan), per-block (= full)
    attention: str = "auto"  # auto (what SDPA dispatches) | flash | mem-efficient | math | eager
    zero: int = 0
    gpus: int = 1
    tp: int = 1
    pp: int = 1
    sequence_parallel: bool = False  # Megatron SP: norms and block inputs split over the tp ranks too
    cp: int = 1  # context parallel: each GPU holds seq / cp of the tokens
    ep: int = 1  # expert parallel: routed experts split over ep of the data-parallel ranks
    lora_rank: int = 0
    activations: str = "count"  # count | korthikanti
    overhead: float | None = None  # bytes; None: CONTEXT_BYTES + ALLOCATOR_MARGIN · peak
    device: str = "cuda"  # cuda; cpu only to compare with the CPU timelines (no cuBLAS workspace, CPU kernels)

    @property
    def dp(self) -> int:
        """Data-parallel degree: GPUs / (tp · pp · cp)."""
        return max(1, self.gpus // (self.tp * self.pp * self.cp))


@record(frozen=False)
class Breakdown:
    weights_bytes: float
    gradients_bytes: float
    optimizer_bytes: float
    activations_bytes: float | None
    kv_cache_bytes: float
    workspace_bytes: float
    peak_bytes: float  # framework allocations at the step's peak (no overhead)
    overhead_bytes: float
    total_bytes: float
    phase: str
    params: float
    trainable_params: float
    at_peak: dict  # part -> bytes alive at the peak (sums to peak_bytes); "transient" = the phase's temporaries
    notes: list[str] = field(default_factory=list)
    phases: dict = field(default_factory=dict)  # phase -> {part: bytes alive} (training; sums = each phase's peak)
    attention_kernel: str | None = None
    optimizer_impl: str | None = None

    def parts(self) -> dict[str, float]:
        return {
            "weights": self.weights_bytes, "gradients": self.gradients_bytes, "optimizer": self.optimizer_bytes,
            "activations": self.activations_bytes or 0, "kv_cache": self.kv_cache_bytes,
            "workspace": self.workspace_bytes, "overhead": self.overhead_bytes,
        }

    def peak_parts(self) -> dict[str, float]:
        """What is alive at the peak, overhead included; sums to total_bytes."""
        return {**self.at_peak, "overhead": self.overhead_bytes}

    def phase_totals(self) -> dict[str, float]:
        """Each phase's peak (framework allocations, no overhead), in step order."""
        return {name: sum(parts.values()) for name, parts in self.phases.items()}

    def dominant(self) -> str:
        parts = self.peak_parts()
        return max(parts, key=parts.get)


def validate(req: Request) -> None:
    if req.params is None and req.shape is None:
        raise InputError("give --params N, --preset ID, --hf-config PATH or the shape as flags (--layers --d-model --heads --vocab)")
    dtype_bytes(req.dtype)
    for name in ("batch", "gpus", "tp", "pp", "cp", "ep", "group_size"):
        if getattr(req, name) < 1:
            raise InputError(f"--{name.replace('_', '-')} must be a positive whole number, not {getattr(req, name)}")
    if req.seq is not None and req.seq < 1:
        raise InputError(f"the sequence length must be positive, not {req.seq}")
    if req.zero not in (0, 1, 2, 3):
        raise InputError(f"--zero {req.zero} does not exist; use 0, 1, 2 or 3 (FSDP full sharding is 3)")
    mp = req.tp * req.pp * req.cp
    if req.gpus % mp:
        raise InputError(f"--gpus {req.gpus} is not a multiple of --tp × --pp × --cp = {mp}; try --gpus {mp * max(1, round(req.gpus / mp))}")
    if req.ep > 1:
        if req.shape is None or not getattr(req.shape, "experts", 0):
            raise InputError("--ep needs a mixture-of-experts model (a preset or shape with --experts)")
        if (req.dp * req.cp) % req.ep:
            raise InputError(f"--ep {req.ep} must divide the data-parallel × context-parallel GPUs ({req.dp * req.cp})")
        if req.shape.experts % req.ep:
            raise InputError(f"--ep {req.ep} must divide the {req.shape.experts} experts")
    if req.cp > 1 and req.seq is not None and req.seq % req.cp:
        raise InputError(f"--cp {req.cp} must divide the sequence length {req.seq}")
    if req.shape is not None:  # parallelism and adapters the model's shape cannot take (issue 15)
        heads, layers = req.shape.heads, getattr(req.shape, "total_layers", None) or req.shape.layers
        if req.tp > 1 and heads % req.tp:
            raise InputError(f"--tp {req.tp} does not divide the model's {heads} attention heads; tensor parallelism splits the heads evenly (Megatron-LM), so use a divisor of {heads}")
        if req.pp > layers:
            raise InputError(f"--pp {req.pp} is more than the model's {layers} layers; every pipeline stage needs at least one layer")
        if req.lora_rank > req.shape.d_model:
            raise InputError(f"--lora-rank {req.lora_rank} is above the model width d_model = {req.shape.d_model}; a rank above the width adds nothing (rank <= min(d_in, d_out))")
    if req.recompute not in RECOMPUTE:
        raise InputError(f"--recompute {req.recompute!r}: use none, selective or full")
    if req.attention not in act.ATTENTION:
        raise InputError(f"--attention {req.attention!r}: use {', '.join(act.ATTENTION)}")
    if req.optimizer_impl is not None and req.optimizer_impl not in OPTIMIZER_IMPLS:
        raise InputError(f"--optimizer-impl {req.optimizer_impl!r}: use {', '.join(OPTIMIZER_IMPLS)}")
    if req.optimizer_impl == "fused" and req.optimizer == "adafactor":
        raise InputError("torch.optim.Adafactor has no fused implementation; use --optimizer-impl for-loop or foreach")
    if req.precision not in PRECISIONS:
        raise InputError(f"--precision {req.precision!r}: use fp32, amp, mixed or pure")
    if req.activations not in ("count", "korthikanti"):
        raise InputError(f"--activations {req.activations!r}: use count or korthikanti")
    if req.train:
        if req.lora_rank < 0:
            raise InputError("--lora-rank must be positive")
        if req.dtype in QUANTISED and not req.lora_rank:
            raise InputError(f"--dtype {req.dtype} trains only as a frozen base; add --lora-rank R (QLoRA), or use bf16/fp16/fp32")
        if req.precision == "fp32" and req.dtype != "fp32":
            raise InputError("--precision fp32 needs --dtype fp32 (or pick amp, mixed or pure for 16-bit compute)")
        if req.precision != "fp32" and req.dtype == "fp32":
            raise InputError(f"--precision {req.precision} needs a 16-bit --dtype (bf16 or fp16); for all-fp32 use --precision fp32")
        if req.lora_rank and req.shape is None:
            raise InputError("--lora-rank needs the model's shape (--preset, --hf-config or shape flags) to size the adapters")


def estimate(req: Request) -> Breakdown:
    """Peak bytes per GPU for serving (default) or one training step (req.train)."""
    validate(req)
    return _train(req) if req.train else _serve(req)


def _dims(req: Request):
    shape = req.shape
    if shape is None:
        return None
    if shape.family != "decoder":
        return None
    return _dims_of(shape)


@functools.lru_cache(maxsize=1024)
def _dims_of(shape) -> act.Dims:
    return act.dims_of(shape)


def _params(req: Request) -> float:
    if req.shape is not None:
        return _shape_params(req.shape)
    return req.params


@functools.lru_cache(maxsize=1024)
def _shape_params(shape) -> int:
    """arch.params, cached: a layout search asks about one shape thousands of times."""
    from llmplan.model import arch

    return arch.params(shape)


def _overhead(req: Request, peak: float) -> float:
    if req.overhead is not None:
        return req.overhead
    return CONTEXT_BYTES + ALLOCATOR_MARGIN * peak


def _serve(req: Request) -> Breakdown:
    shape, P = req.shape, _params(req)
    shard = req.tp * req.pp
    W = weights_bytes(shape, P, req.dtype, req.group_size) / shard
    notes: list[str] = []
    kv = 0.0
    transient = None
    context = req.seq or (shape.context if shape is not None else None)
    if shape is None:
        notes.append("the KV cache and prefill memory need the model's shape: give --preset, --hf-config or shape flags")
    else:
        kv_bytes = dtype_bytes(req.kv_dtype) if req.kv_dtype else compute_bytes(req.dtype)
        kv = kv_cache_bytes(shape, req.batch, context, kv_bytes) / shard
        d = _dims(req)
        if d is not None:
            kernel = attention_kernel(req, d)
            transient = prefill_transient_bytes(d, req.batch, context, compute_bytes(req.dtype),
                                                "eager" if kernel in ("eager", "math") else "flash", req.tp)
        else:
            notes.append(f"prefill activations are counted for decoder-only models; this is a {shape.family}")
    alive = {"weights": W, "kv_cache": kv, "activations": transient or 0, "workspace": CUBLAS_WORKSPACE}
    peak = sum(alive.values())
    over = _overhead(req, peak)
    kernel = attention_kernel(req, _dims(req)) if shape is not None else None
    return Breakdown(W, 0, 0, transient, kv, CUBLAS_WORKSPACE, peak, over, peak + over, "prefill", P, 0, alive, notes,
                     {"prefill": alive}, kernel, None)


def prefill_transient_bytes(d: act.Dims, b: int, s: int, c: int, attention: str = "flash", tp: int = 1) -> float:
    """Largest short-lived memory of a no-grad prefill of b × s tokens (HF LlamaModel forward, nothing
    kept for backward; the K and V written to the cache are counted in the KV cache).

    Alive throughout: the embedding output (LlamaModel keeps `inputs_embeds` referenced) and the current
    layer's input (the caller's variable), plus the rotary cos/sin tables. Then the larger of
    - the MLP: the attention sum, its normalised copy, and act(gate), up and their product: 2·h + 3·i;
    - flash attention: the normalised input, q and its rotary copy, k before rotary, the output: h + 3·a·hd + kv·hd;
    - eager attention: the additive mask b·s² and, per head, the masked scores, softmax's fp32 copy of
      its 16-bit input and its fp32 output (c + 4 + 4 bytes; c + 4 in fp32) over s² positions.
    Logits for the last position only (b·V, and an fp32 copy), as serving engines and `generate` do.
    Checked against CPU profiles in tests/data/prefill_cpu.jsonl.
    """
    T = b * s
    always = 2 * T * d.h * c + 2 * s * d.hd * c
    mlp = (2 * T * d.h + 3 * T * d.i // tp) * c
    if attention == "eager":
        per_score = c + 4 + (4 if c != 4 else 0)
        attn = T * d.h * c + b * s * s * c + T * d.a // tp * s * per_score
    else:
        attn = (T * d.h + 3 * T * d.a * d.hd // tp + T * d.kv * d.hd // tp) * c
    return always + max(mlp, attn) + b * d.V * (c + 4)


def attention_kernel(req: Request, d: act.Dims | None) -> str:
    """The attention kernel that runs: the forced one, or SDPA's dispatch (`activations.sdpa_backend`)."""
    if req.attention != "auto":
        return req.attention
    if d is None:
        return "flash"
    return act.sdpa_backend(compute_bytes(req.dtype), d.hd, d.kv != d.a)


PHASES = ("end of forward", "start of backward", "backward, output head", "backward, top layer",
          "backward, bottom layer", "backward, embedding", "optimizer step")


def _train(req: Request) -> Breakdown:
    if req.recompute == "selective" and req.selective == "per-block":
        from dataclasses import replace

        req = replace(req, recompute="full")  # llm-foundry / DeepSpeed / HF: "selective" checkpoints whole blocks
    shape, P = req.shape, _params(req)
    notes: list[str] = []
    mp = req.tp * req.pp
    n_d = req.gpus // mp  # ZeRO shards over the data- and context-parallel ranks (Megatron's dp×cp group)
    n_e = max(1, n_d // req.ep)  # expert data-parallel ranks
    sb = state_bytes(req.precision, req.dtype, req.optimizer)
    stack_impl = req.stack_optimizer_impl if req.optimizer == "adamw" else None  # the stacks name their Adam
    impl = req.optimizer_impl or stack_impl or default_optimizer_impl(req.optimizer)
    E = 0 if req.lora_rank else expert_params(shape)

    def local(values: float, expert: float, sharded: bool) -> float:
        """Per-GPU share: dense values over tp·pp (and ZeRO's n_d), experts also over ep (and n_d/ep)."""
        return (values - expert) / mp / (n_d if sharded else 1) + expert / (mp * req.ep) / (n_e if sharded else 1)

    if req.lora_rank:
        trainable = lora_params(shape, req.lora_rank)
        W_full = weights_bytes(shape, P, req.dtype, req.group_size) + trainable * sb.weights
    else:
        trainable = P
        W_full = weights_bytes(shape, P, "fp32" if sb.weights == 4 else req.dtype, req.group_size)
    E_w = expert_params(shape)
    W = W_full * local(P, E_w, req.zero >= 3) / P
    g_value = 4 if req.fp32_gradients else sb.gradients
    shard_grads = req.zero >= 3 or (req.zero == 2 and not req.zero2_full_gradients)
    G = local(trainable, E, shard_grads) * g_value
    O = local(trainable, E, req.zero >= 1) * sb.optimizer
    if req.optimizer == "adafactor" and shape is not None:
        O += adafactor_state_values(shape) * (4 if req.precision != "pure" else compute_bytes(req.dtype)) / mp / (n_d if req.zero >= 1 else 1)
    if req.zero >= 3 and shape is not None and n_d > 1:
        # ZeRO-3/FSDP gathers one layer's full weights to compute it and prefetches the next.
        from llmplan.model import arch

        largest_layer = arch.layer_params(shape, max(0, shape.total_layers - 1))  # MoE layers come last
        W += 2 * largest_layer * compute_bytes(req.dtype) / req.tp
    largest = None
    if shape is not None:
        largest = largest_tensor_params(shape, req.tp) / (n_d if req.zero >= 1 else 1)  # FSDP2 shards every tensor
    temps = optimizer_step_temporaries(req.optimizer, impl, sb.workspace, local(trainable, E, req.zero >= 1), largest)
    if req.optimizer in ("adamw", "adafactor") and impl == "for-loop" and shape is None:
        notes.append(f"the for-loop {req.optimizer}'s temporaries (the largest tensor's) need the model's shape; counted as 0")
    cublas = 2 * CUBLAS_WORKSPACE if req.device == "cuda" else 0  # forward and backward threads
    states = {"weights": W, "optimizer": O, "workspace": cublas + req.buffer_bytes}
    d = _dims(req)
    kernel = attention_kernel(req, d)
    if d is None:
        if shape is not None:
            notes.append(f"activations are counted for decoder-only models; this is a {shape.family}")
        else:
            notes.append("activations need the model's shape (--preset, --hf-config or shape flags); total counts model states only")
        alive = {**states, "gradients": G, "activations": 0, "transient": temps}
        phases = {"optimizer step": alive}
        return _result(req, phases, W, G, O, None, cublas, P, trainable, notes, kernel, impl)

    seq = req.seq or shape.context
    phases = _step_phases(req, shape, d, seq, kernel, states, G, temps, notes)
    A = phases.pop("_activations")
    return _result(req, phases, W, G, O, A, cublas, P, trainable, notes, kernel, impl)


def _result(req, phases, W, G, O, A, cublas, P, trainable, notes, kernel, impl) -> Breakdown:
    phase = max(phases, key=lambda k: sum(phases[k].values()))
    alive = phases[phase]
    peak = sum(alive.values())
    over = _overhead(req, peak)
    return Breakdown(W, G, O, A, 0, cublas, peak, over, peak + over, phase, P, trainable, alive, notes,
                     phases, kernel, impl)


def _attention_backward(kernel: str, q_el: float, kv_el: float, d: act.Dims, S: float, c: int, device: str) -> float:
    """Bytes the attention core's backward allocates beyond what the layer saved.

    flash / memory-efficient: dq, dk, dv. On CUDA the flash backward also holds an fp32 dq accumulator and
    softmax_d (aten/src/ATen/native/transformers/cuda/flash_attn/flash_api.cpp, mha_bwd: dq_accum, softmax_d)
    and, for GQA, dk/dv expanded to every query head before the group sum (dk_expanded, dv_expanded).
    math: d(P) from P·V's backward and _softmax_backward_data's output, two score-sized buffers (its saved
    P is freed after). eager: d(P) in the compute dtype cast to fp32, and softmax's fp32 gradient: two fp32
    score buffers once the low-precision probabilities are freed (fp32: d(P) and the softmax gradient).
    """
    grads = (q_el + 2 * kv_el) * c
    if kernel in ("flash", "mem-efficient"):
        if device == "cuda":
            extra = q_el * 4 + q_el / d.hd * 4  # dq_accum (fp32) and softmax_d / delta (fp32 per head and token)
            if d.kv != d.a:
                extra += 2 * q_el * c  # dk, dv expanded to every head
            return grads + extra
        return grads
    if kernel == "math":
        return 2 * S * c
    return 2 * S * 4 - (S * c if c != 4 else 0)


def _attention_forward_transient(kernel: str, S: float, b: int, s_q: int, s_k: int, c: int) -> float:
    """Short-lived score-sized tensors while the attention core runs forward (beyond what it saves).

    math: the raw scores beside softmax's output, and the causal mask it builds (bool, then additive in the
    compute dtype: attention.cpp convert_boolean_attn_mask). eager (HF): the b·s² additive mask alive for the
    whole forward and, while softmax(dtype=fp32) runs, the masked scores and its fp32 copy of them (one fp32
    score buffer beyond the low-precision copy that is saved afterwards).
    """
    if kernel == "math":
        return S * c + s_q * s_k * (1 + c)
    if kernel == "eager":
        return b * s_q * s_k * c + S * 4
    return 0.0


@functools.lru_cache(maxsize=4096)
def _saved_totals(d: act.Dims, b: int, seq: int, precision: str, c: int, kernel: str, recompute: str,
                  tp: int, sp: bool, cp: int, fused=False) -> tuple[float, float, float, float, float]:
    """Saved bytes of one dense layer (as run, and without recompute), one MoE layer (same) and the head.
    `fused`: whether the norms are fused, or (norms, SwiGLU)."""
    args = (b, seq, precision, c, kernel)
    fused, fused_mlp = fused if isinstance(fused, tuple) else (fused, None)
    x_dense = act.total(act.layer_saved(d, *args, recompute, tp, sp, cp, fused_norm=fused, fused_mlp=fused_mlp))
    full_dense = act.total(act.layer_saved(d, *args, "none", tp, sp, cp, fused_norm=fused, fused_mlp=fused_mlp))
    x_moe = act.total(act.layer_saved(d, *args, recompute, tp, sp, cp, moe=True, fused_norm=fused, fused_mlp=fused_mlp)) if d.moe_layers else 0.0
    full_moe = act.total(act.layer_saved(d, *args, "none", tp, sp, cp, moe=True, fused_norm=fused, fused_mlp=fused_mlp)) if d.moe_layers else 0.0
    head = act.total(act.head_saved(d, b, seq, precision, c, tp, sp, cp))
    return x_dense, full_dense, x_moe, full_moe, head


@functools.lru_cache(maxsize=4096)
def _mlp_half(d: act.Dims, b: int, seq: int, precision: str, c: int, kernel: str, tp: int, sp: bool, cp: int, moe: bool,
              fused=False) -> float:
    """What one layer saves from its second norm on (the MLP half), freed before its attention's backward."""
    fused, fused_mlp = fused if isinstance(fused, tuple) else (fused, None)
    items = act.layer_saved(d, b, seq, precision, c, kernel, "none", tp, sp, cp, moe=moe, fused_norm=fused, fused_mlp=fused_mlp)
    start = next(i for i, item in enumerate(items) if item.name.startswith("MLP "))
    return act.total(items[start:])


def _step_phases(req: Request, shape, d: act.Dims, seq: int, kernel: str, states: dict, G: float,
                 temps: float, notes: list[str]) -> dict:
    """Bytes alive in each phase of one training step (per GPU), each phase the set of tensors alive then.

    Returns {phase: {part: bytes}} plus "_activations" (what one forward pass saves). Under pipeline
    parallelism the first stage (pp micro-batches in flight under 1F1B, the embedding) and the last stage
    (one micro-batch, the output head and loss) are both modelled; the phases are the busier stage's.
    """
    from llmplan.model import arch

    b, tp, cp, sp = req.batch, req.tp, req.cp, req.sequence_parallel and req.tp > 1
    T = b * seq // cp
    precision = req.precision
    if req.lora_rank and req.dtype != "fp32":
        precision = "pure"  # the frozen base runs in the 16-bit dtype: the residual stream is 16-bit
    c = compute_bytes(req.dtype)
    r = act.value_bytes(precision, c)[0]  # the residual stream's bytes per value
    sbg = 4 if req.fp32_gradients else state_bytes(req.precision, req.dtype, req.optimizer).gradients
    n_shard_g = (req.gpus // (tp * req.pp)) if req.zero >= 3 or (req.zero == 2 and not req.zero2_full_gradients) else 1
    g_bytes = 0 if req.lora_rank else sbg / n_shard_g  # gradient bytes per parameter on this GPU
    moe_n, dense_n = d.moe_layers, d.layers - d.moe_layers
    fusion = req.fused_norms if req.fused_mlp is None or req.fused_mlp == req.fused_norms else (req.fused_norms, req.fused_mlp)
    if req.activations == "korthikanti":
        per = act.korthikanti_layer_bytes(seq // cp, b, d.h, d.a, tp, "selective" if kernel != "eager" and req.recompute == "none" else req.recompute, sp)
        x_dense = x_moe = per
        full_dense = full_moe = act.korthikanti_layer_bytes(seq // cp, b, d.h, d.a, tp, "selective" if kernel != "eager" else "none", sp)
        head = 0.0
        notes.append("activations from Korthikanti et al. 2022 Table 2 (GPT block, 16-bit, no logits)")
    else:
        mode = "op" if req.recompute == "selective" and req.selective == "op-level" else req.recompute
        x_dense, full_dense, x_moe, full_moe, head = _saved_totals(d, b, seq, precision, c, kernel, mode, tp, sp, cp, fusion)
    if req.fused_loss and not req.activations == "korthikanti":
        # a fused cross-entropy (flash_attn's) saves the per-token logsumexp instead of fp32 log-probabilities
        head = head - T * d.V * 4 / tp + T * 4
    x_layers = dense_n * x_dense + moe_n * x_moe
    x_one = x_layers / d.layers  # one layer's saved tensors (the average kind)
    one_full = max(full_dense, full_moe)  # one layer's no-recompute saved set (the largest kind)
    korth = req.activations == "korthikanti"
    logits = 0.0 if korth else T * d.V * c / tp
    # a loop that drops its reference before backward (torchtitan's `del pred`, Megatron's loss inside forward) frees
    # the 16-bit logits once the loss holds its own fp32 copy: from the start of backward they are gone
    dropped = 0.0 if req.logits_kept else logits
    # autocast's low-precision weight copies (amp): every linear's, and the output head's (tied or not).
    amp = precision == "amp" and c < 4
    layer_lin = linear_params_per_layer(shape) / tp
    if moe_n:
        layer_lin = (arch.attention_params(shape) + arch.moe_params(shape) - shape.experts * arch.mlp_params(shape, shape.d_expert) * (1 - 1 / req.ep)) / tp
    lin_all = (layer_lin * d.layers) / req.pp
    head_w = d.V * d.h / tp
    cast_cache = (lin_all + head_w) * c if amp else 0.0  # alive until autocast exits (end of forward)
    copies_saved = (head_w + (0 if req.recompute == "full" else lin_all)) * c if amp else 0.0
    recast_layer = layer_lin * c if amp and req.recompute == "full" else 0.0
    G_head = head_w * g_bytes  # the output head's gradient (the shared one when tied) is written first
    G_layer = layer_lin * g_bytes
    G_emb = 0.0 if shape.tied_embeddings else d.V * d.h / tp * g_bytes
    loss_bwd = 0.0 if korth else (T * d.V * c / tp if req.fused_loss else act.loss_backward_bytes(d, b, seq // cp, tp))
    # HF ForCausalLMLoss: logits.float() is alive while log_softmax writes its fp32 output (a no-op in fp32).
    loss_fwd = 0.0 if korth or precision == "fp32" or req.fused_loss else T * d.V * 4 / tp
    whole = tp if sp else 1
    d_resid = T * d.h * r / whole  # the residual stream's gradient, carried down the layers
    heads_here = d.a // tp
    S = b * heads_here * (seq // cp) * seq  # score-matrix elements on this GPU (math and eager kernels)
    i_tok = (d.i if not moe_n else d.i_expert * (d.top_k + d.shared)) // tp
    ffn_w = d.h * (d.i if not moe_n else d.i_expert) / tp
    q_el, kv_el = T * d.a * d.hd / tp, T * d.kv * d.hd / tp
    # One layer's backward, the largest of its three moments (CPU timelines, tests/data/memory_timeline_cpu.json):
    # RMSNorm's backward in fp32 (d(x̂) upcast, MeanBackward's expand, PowBackward's 2·x and product: 4 T·h fp32);
    # SwiGLU's product backward: d(act(gate)) and d(up) beside the down projection's weight gradient;
    # the attention kernel's backward (see _attention_backward).
    mlp_half = 0.0 if korth else _mlp_half(d, b, seq, precision, c, kernel, tp, sp, cp, bool(moe_n), fusion)
    G_mlp = (ffn_w * (3 if d.gated else 2) if not moe_n else layer_lin - arch.attention_params(shape) / tp) * g_bytes
    # MLP first (SwiGLU's product backward), then, with the MLP half of the layer's saved tensors freed and its
    # weight gradients written, the post-attention norm's and the attention core's backward.
    layer_bwd = max(ffn_w * c + 2 * T * i_tok * c,
                    G_mlp - mlp_half + max(4 * T * d.h * 4 / whole, _attention_backward(kernel, q_el, kv_el, d, S, c, req.device)))
    fwd_attn = _attention_forward_transient(kernel, S, b, seq // cp, seq, c) - mlp_half
    if req.recompute == "full":
        # checkpoint (reentrant, HF's default) reruns the layer in backward under autocast: its full saved set,
        # re-cast weights and the rerun forward's own temporaries, then that layer's backward.
        layer_bwd = one_full + recast_layer + max(layer_bwd, fwd_attn)
    head_rest = max(0.0, head - (T * d.V * (c + (0 if req.fused_loss else 4)) / tp if not korth else 0.0))  # final norm, lm_head input, ids
    d_logits = 0.0 if korth else T * d.V * c / tp
    final_norm = 4 * T * d.h * 4 / whole + T * d.h * c / whole  # the final norm's backward temporaries + d(hidden)
    if shape.tied_embeddings and not amp:
        # the engine sums lm_head's gradient (held in AccumulateGrad's input buffer) and the embedding's out of
        # place: three vocab-sized gradients at once; under amp the fp32 copies are summed in place.
        emb_bwd = 2 * d.V * d.h / tp * g_bytes
    else:
        emb_bwd = d_resid + (d.V * d.h / tp * g_bytes if shape.tied_embeddings else 0.0)

    def stage(x_held: float, x_other: float, with_head: bool, with_embedding: bool, steady: bool, suffix: str) -> dict:
        """x_held: every in-flight micro-batch's saved tensors; x_other: those of the micro-batches other than
        the one in backward; steady: 1F1B's steady state, every gradient already allocated (accumulating)."""
        x_top = x_other + x_one
        h_fwd = head if with_head else 0.0
        h_saved = head - dropped if with_head else 0.0  # from the start of backward
        lg = logits - dropped if with_head else 0.0
        g_top = G_head if with_head else 0.0  # the layer's own gradients are written as its saved tensors go
        after_head = head_w * c if amp and with_head else 0.0
        out = {
            # forward: the loss (logits.float() beside log_softmax's output) or the top layer's attention scores
            "end of forward": {**states, "activations": x_held + h_fwd, "autocast_cache": cast_cache, "gradients": 0.0,
                               "transient": max(loss_fwd if with_head else 0.0, fwd_attn - h_fwd)},
            # loss.backward() begins: every saved tensor is alive and the loss writes d(log-probs), d(logits) in fp32.
            "start of backward": {**states, "activations": x_held + h_saved, "autocast_cache": copies_saved,
                                  "gradients": 0.0, "transient": loss_bwd if with_head else d_resid},
            # the final norm (its saved tensors and backward temporaries) and the top layer, lm_head's gradient written.
            "backward, top layer": {**states, "activations": x_held + lg, "autocast_cache": copies_saved - after_head, "gradients": g_top,
                                    "transient": max(final_norm + head_rest if with_head else 0.0, d_resid + layer_bwd)},
            # layer 0: its own saved tensors (or its recomputation) and nearly every gradient.
            "backward, bottom layer": {**states, "activations": x_top + lg, "autocast_cache": layer_lin * c if amp and req.recompute != "full" else 0.0,
                                       "gradients": G - G_emb - G_layer, "transient": d_resid + layer_bwd},
            "optimizer step": {**states, "activations": lg, "autocast_cache": 0.0, "gradients": G, "transient": temps},
        }
        if with_head:
            # lm_head's backward: d(logits) in the compute dtype, its weight gradient (the autocast copy's dtype) and d(hidden).
            out["backward, output head"] = {**states, "activations": x_held + lg + head_rest, "autocast_cache": copies_saved,
                                            "gradients": 0.0, "transient": d_logits + head_w * c + T * d.h * c / whole}
        if with_embedding:
            out["backward, embedding"] = {**states, "activations": lg + x_other, "autocast_cache": 0.0, "gradients": G, "transient": emb_bwd}
        if steady:
            for name, parts in out.items():
                if name != "optimizer step":
                    parts["gradients"] = G
        return {name + suffix: out[name] for name in PHASES if name in out}

    if req.pp == 1:
        phases = stage(x_layers, 0.0, True, True, False, "")
    else:
        # 1F1B (Narayanan et al. 2021 §2.2; Korthikanti et al. 2022 §4.2.3): the first stage holds pp
        # micro-batches of its L/pp layers (L layers' worth), the last stage one; gradients accumulate.
        stage_layers = x_layers / req.pp if not req.stage_layers else x_layers / d.layers * req.stage_layers
        held = stage_layers * req.pp  # 1F1B: pp micro-batches in flight on the first stage
        first = stage(held, held - stage_layers, False, True, True, " (first stage)")
        last = stage(stage_layers, 0.0, True, False, True, " (last stage)")
        phases = first if max(map(lambda p: sum(p.values()), first.values())) >= max(map(lambda p: sum(p.values()), last.values())) else last
    phases["_activations"] = x_layers + head
    return phases
