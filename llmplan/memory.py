"""GPU memory for serving and training: weights, gradients, optimizer states, activations, KV cache.

The peak of a training step is modelled phase by phase (what is alive at the same time), not as a
sum of everything: the start of backward (all saved activations plus the fp32 gradients of the
logits), the walk down the layers (activations freed as gradients are written) and the optimizer
step (gradients plus the optimizer's temporaries). Activations come from `llmplan.activations`
(tensor by tensor) or, with `activations="korthikanti"`, from Korthikanti et al. 2022, Table 2.

Pure functions, no printing. Sources: memory-and-compute.md §3 (ZeRO, bytes per parameter, KV cache,
quantised formats) and the H100 measurements in tests/data/gpu_memory_calibration.jsonl.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from llmplan import activations as act
from llmplan.errors import InputError

GiB = 2**30
WEIGHT_DTYPES = ("fp32", "fp16", "bf16", "fp8", "int8", "int4", "nf4")
QUANTISED = ("fp8", "int8", "int4", "nf4")
OPTIMIZERS = ("adamw", "adamw-8bit", "sgd", "sgd-momentum", "adafactor", "lion")
PRECISIONS = act.PRECISIONS
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


# ---------------------------------------------------------------------------- bytes per value

def dtype_bytes(name: str) -> float:
    """Bytes per stored value: fp32 4, fp16/bf16 2, fp8/int8 1, int4/nf4 0.5 (memory-and-compute.md §3)."""
    table = {"fp32": 4, "fp16": 2, "bf16": 2, "fp8": 1, "int8": 1, "int4": 0.5, "nf4": 0.5}
    if name not in table:
        raise InputError(f"{name!r} is not a weight format; use one of {', '.join(WEIGHT_DTYPES)}")
    return table[name]


def quantised_bits_per_weight(name: str, group_size: int = 128) -> float:
    """Bits per weight including the per-group scales (memory-and-compute.md §3).

    int4 (GPTQ/AWQ): fp16 scale + fp16 zero per group: 4 + 32/g (4.25 at g=128).
    nf4 (bitsandbytes): one fp32 absmax per block: 4 + 32/g (4.5 at QLoRA's block 64).
    int8: one fp16 scale per group: 8 + 16/g. fp8: one fp32 scale per group (block scaling): 8 + 32/g.
    """
    if name in ("int4", "nf4"):
        return 4 + 32 / group_size
    if name == "int8":
        return 8 + 16 / group_size
    if name == "fp8":
        return 8 + 32 / group_size
    return 8 * dtype_bytes(name)


def compute_bytes(dtype: str) -> int:
    """Bytes of a value in the matmuls: quantised weights are dequantised to bf16 for compute."""
    return 4 if dtype == "fp32" else 2


# ---------------------------------------------------------------------------- model states

def zero_model_states(psi: float, n_d: int, stage: int, k: float = 12) -> float:
    """Per-GPU model-state bytes, mixed-precision Adam (Rajbhandari et al. 2020, Fig. 1; K = 12).

    DP (2+2+K)Ψ; P_os 2Ψ + 2Ψ + KΨ/N_d; P_os+g 2Ψ + (2+K)Ψ/N_d; P_os+g+p (2+2+K)Ψ/N_d.
    """
    if stage == 0:
        return (2 + 2 + k) * psi
    if stage == 1:
        return 2 * psi + 2 * psi + k * psi / n_d
    if stage == 2:
        return 2 * psi + (2 + k) * psi / n_d
    if stage == 3:
        return (2 + 2 + k) * psi / n_d
    raise InputError(f"ZeRO stage {stage} does not exist; use 0, 1, 2 or 3")


@dataclass(frozen=True)
class StateBytes:
    """Bytes per trainable parameter: weights, gradients, optimizer (master copy + states), step workspace."""

    weights: float
    gradients: float
    optimizer: float
    workspace: float  # transient during optimizer.step()


def optimizer_state_count(optimizer: str) -> tuple[float, float]:
    """(full-size states, bytes-per-value override or 0) of each optimizer's actual state.

    AdamW: m and v (Loshchilov & Hutter 2019). 8-bit AdamW: m and v as uint8 with one fp32 scale per
    2048-value block (bitsandbytes; Dettmers et al. 2022): 1 + 4/2048 bytes each. SGD: none;
    with momentum: one buffer. Lion: one momentum (Chen et al. 2023). Adafactor (β1 = 0): factored
    second moment, about (rows + cols) per matrix, counted as 0 full-size states here and added by
    `adafactor_state_values`.
    """
    return {
        "adamw": (2, 0),
        "adamw-8bit": (2, 1 + 4 / 2048),
        "sgd": (0, 0),
        "sgd-momentum": (1, 0),
        "adafactor": (0, 0),
        "lion": (1, 0),
    }[optimizer]


def state_bytes(precision: str, dtype: str, optimizer: str) -> StateBytes:
    """Bytes per trainable parameter for a precision mode (memory-and-compute.md §3 table).

    fp32: 4 w + 4 g + states in fp32. amp (PyTorch autocast): fp32 weights, grads and states.
    mixed (Megatron/DeepSpeed; ZeRO's 2 + 2 + K): 16-bit weights and grads, fp32 master + states.
    pure: everything in the compute dtype.
    """
    if optimizer not in OPTIMIZERS:
        raise InputError(f"{optimizer!r} is not an optimizer; use one of {', '.join(OPTIMIZERS)}")
    c = compute_bytes(dtype)
    if precision == "fp32":
        w, g, master, sb = 4, 4, 0, 4
    elif precision == "amp":
        w, g, master, sb = 4, 4, 0, 4
    elif precision == "mixed":
        w, g, master, sb = c, c, 4, 4
    elif precision == "pure":
        w, g, master, sb = c, c, 0, c
    else:
        raise InputError(f"{precision!r} is not a precision mode; use one of {', '.join(PRECISIONS)}")
    n, override = optimizer_state_count(optimizer)
    opt = master + n * (override or sb)
    # torch.optim AdamW (foreach, PyTorch's default): exp_avg_sq_sqrt = _foreach_sqrt(v) is one full-size
    # temporary in the state dtype (torch/optim/adam.py, _multi_tensor_adam). SGD (foreach, no nesterov,
    # no weight decay) and bitsandbytes 8-bit update in place; Lion (lion-pytorch) and torch's Adafactor
    # loop over tensors, so their temporaries are one tensor at a time (not counted).
    ws = sb if optimizer == "adamw" else 0
    return StateBytes(w, g, opt, ws)


# ---------------------------------------------------------------------------- shapes

def linear_params_per_layer(shape) -> int:
    """Weights of the matrices in one (dense) layer: attention projections + MLP."""
    from llmplan import arch

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
    norms stay 16-bit, as GPTQ/AWQ/bitsandbytes leave them (memory-and-compute.md §3).
    Unquantised with a dense LLaMA-style shape: every parameter tensor (and rotary's two fp32
    inv_freq buffers) allocated in module order through the CUDA caching allocator (`allocator_bytes`),
    which is what `torch.cuda.memory_allocated()` shows after building the model. Otherwise params × bytes.
    """
    if dtype not in QUANTISED:
        sizes = parameter_tensor_bytes(shape, dtype_bytes(dtype)) if shape is not None else None
        if sizes is None:
            return params * dtype_bytes(dtype)
        return allocator_bytes(sizes)
    if shape is None:
        return params * quantised_bits_per_weight(dtype, group_size) / 8
    from llmplan import arch

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
    if (shape.family != "decoder" or shape.is_moe or shape.is_mla or shape.bias or shape.has_qkv_bias
            or shape.positions not in ("rotary", "alibi", "relative") or shape.n_layer_norms != 2
            or shape.has_embedding_norm):
        return None
    from llmplan import arch

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


def kv_cache_bytes(shape, batch: int, context: int, bytes_per_value: float) -> float:
    """2 · L · n_kv · head_dim · s · b · bytes (GQA via n_kv; MLA latent), from arch.kv_cache_bytes_per_token."""
    from llmplan import arch

    return arch.kv_cache_bytes_per_token(shape, bytes_per_value) * batch * context


# ---------------------------------------------------------------------------- requests and results

@dataclass(frozen=True)
class Request:
    params: float | None = None
    shape: object = None
    dtype: str = "bf16"
    group_size: int = 128
    train: bool = False
    precision: str = "amp"
    optimizer: str = "adamw"
    batch: int = 1
    seq: int | None = None  # training sequence / inference context
    kv_dtype: str | None = None
    recompute: str = "none"
    attention: str = "flash"
    zero: int = 0
    gpus: int = 1
    tp: int = 1
    pp: int = 1
    lora_rank: int = 0
    activations: str = "count"  # count | korthikanti
    overhead: float | None = None  # bytes; None: CONTEXT_BYTES + ALLOCATOR_MARGIN · peak


@dataclass
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

    def parts(self) -> dict[str, float]:
        return {
            "weights": self.weights_bytes, "gradients": self.gradients_bytes, "optimizer": self.optimizer_bytes,
            "activations": self.activations_bytes or 0, "kv_cache": self.kv_cache_bytes,
            "workspace": self.workspace_bytes, "overhead": self.overhead_bytes,
        }

    def peak_parts(self) -> dict[str, float]:
        """What is alive at the peak, overhead included; sums to total_bytes."""
        return {**self.at_peak, "overhead": self.overhead_bytes}

    def dominant(self) -> str:
        parts = self.peak_parts()
        return max(parts, key=parts.get)


def validate(req: Request) -> None:
    if req.params is None and req.shape is None:
        raise InputError("give --params N, --preset ID, --hf-config PATH or the shape as flags (--layers --d-model --heads --vocab)")
    dtype_bytes(req.dtype)
    for name in ("batch", "gpus", "tp", "pp", "group_size"):
        if getattr(req, name) < 1:
            raise InputError(f"--{name.replace('_', '-')} must be a positive whole number, not {getattr(req, name)}")
    if req.seq is not None and req.seq < 1:
        raise InputError(f"the sequence length must be positive, not {req.seq}")
    if req.zero not in (0, 1, 2, 3):
        raise InputError(f"--zero {req.zero} does not exist; use 0, 1, 2 or 3 (FSDP full sharding is 3)")
    if req.gpus % (req.tp * req.pp):
        raise InputError(f"--gpus {req.gpus} is not a multiple of --tp × --pp = {req.tp * req.pp}")
    if req.shape is not None:  # parallelism and adapters the model's shape cannot take (issue 15)
        heads, layers = req.shape.heads, getattr(req.shape, "total_layers", None) or req.shape.layers
        if req.tp > 1 and heads % req.tp:
            raise InputError(f"--tp {req.tp} does not divide the model's {heads} attention heads; tensor parallelism splits the heads evenly (Megatron-LM), so use a divisor of {heads}")
        if req.pp > layers:
            raise InputError(f"--pp {req.pp} is more than the model's {layers} layers; every pipeline stage needs at least one layer")
        if req.lora_rank > req.shape.d_model:
            raise InputError(f"--lora-rank {req.lora_rank} is above the model width d_model = {req.shape.d_model}; a rank above the width adds nothing (rank <= min(d_in, d_out))")
    if req.recompute not in act.RECOMPUTE:
        raise InputError(f"--recompute {req.recompute!r}: use none, selective or full")
    if req.attention not in act.ATTENTION:
        raise InputError(f"--attention {req.attention!r}: use flash or eager")
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
    return act.dims_of(shape)


def _params(req: Request) -> float:
    if req.shape is not None:
        from llmplan import arch

        return arch.params(req.shape)
    return req.params


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
            transient = prefill_transient_bytes(d, req.batch, context, compute_bytes(req.dtype), req.attention, req.tp)
        else:
            notes.append(f"prefill activations are counted for decoder-only models; this is a {shape.family}")
    alive = {"weights": W, "kv_cache": kv, "activations": transient or 0, "workspace": CUBLAS_WORKSPACE}
    peak = sum(alive.values())
    over = _overhead(req, peak)
    return Breakdown(W, 0, 0, transient, kv, CUBLAS_WORKSPACE, peak, over, peak + over, "prefill", P, 0, alive, notes)


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


def _train(req: Request) -> Breakdown:
    shape, P = req.shape, _params(req)
    notes: list[str] = []
    mp = req.tp * req.pp
    n_d = req.gpus // mp
    sb = state_bytes(req.precision, req.dtype, req.optimizer)
    if req.lora_rank:
        trainable = lora_params(shape, req.lora_rank)
        base = weights_bytes(shape, P, req.dtype, req.group_size)
        W_full = base + trainable * sb.weights
    else:
        trainable = P
        W_full = weights_bytes(shape, P, "fp32" if sb.weights == 4 else req.dtype, req.group_size)
    G_full = trainable * sb.gradients
    O_full = trainable * sb.optimizer
    if req.optimizer == "adafactor" and shape is not None:
        O_full += adafactor_state_values(shape) * (4 if req.precision != "pure" else compute_bytes(req.dtype))
    W, G, O = W_full / mp, G_full / mp, O_full / mp
    if req.zero >= 1:
        O /= n_d
    if req.zero >= 2:
        G /= n_d
    if req.zero >= 3:
        W /= n_d
    gathered = 0.0
    if req.zero >= 3 and shape is not None and n_d > 1:
        # ZeRO-3/FSDP gathers one layer's full weights to compute it and prefetches the next.
        from llmplan import arch

        largest_layer = arch.layer_params(shape, max(0, shape.total_layers - 1))  # MoE layers come last
        gathered = 2 * largest_layer * compute_bytes(req.dtype) / req.tp
        W += gathered
    ws_opt = trainable / mp * sb.workspace / (n_d if req.zero >= 1 else 1)
    cublas = 2 * CUBLAS_WORKSPACE  # forward and backward threads
    base = W + O + cublas
    d = _dims(req)
    if d is None:
        if shape is not None:
            notes.append(f"activations are counted for decoder-only models; this is a {shape.family}")
        else:
            notes.append("activations need the model's shape (--preset, --hf-config or shape flags); total counts model states only")
        alive = {"weights": W, "optimizer": O, "gradients": G, "workspace": cublas, "transient": ws_opt}
        peak = sum(alive.values())
        over = _overhead(req, peak)
        return Breakdown(W, G, O, None, 0, cublas, peak, over, peak + over, "optimizer step", P, trainable, alive, notes)

    seq = req.seq or shape.context
    precision = req.precision
    if req.lora_rank and req.dtype != "fp32":
        precision = "pure"  # the frozen base runs in the 16-bit dtype: the residual stream is 16-bit
    c = compute_bytes(req.dtype)
    layers_here = d.layers  # 1F1B: the first pipeline stage holds p micro-batches of L/p layers (Korthikanti §4.2.3)
    if req.activations == "korthikanti":
        per_layer = act.korthikanti_layer_bytes(seq, req.batch, d.h, d.a, req.tp, req.recompute)
        if req.attention == "flash" and req.recompute == "none":
            per_layer = act.korthikanti_layer_bytes(seq, req.batch, d.h, d.a, req.tp, "selective")
        layer_total = per_layer * layers_here
        head, loss_bwd, one_layer = 0.0, 0.0, per_layer
        notes.append("activations from Korthikanti et al. 2022 Table 2 (GPT block, 16-bit, no logits)")
    else:
        items = act.layer_saved(d, req.batch, seq, precision, c, req.attention, req.recompute, req.tp)
        layer_total = act.total(items) * layers_here
        head = act.total(act.head_saved(d, req.batch, seq, precision, c, req.tp))
        lin = shape.layers * linear_params_per_layer(shape)
        head += act.weight_copy_bytes(lin / mp, lm_head_params(shape) / req.tp, precision, c, req.recompute)
        loss_bwd = act.loss_backward_bytes(d, req.batch, seq, req.tp)
        # backward of one layer: its recomputed activations (full recompute) or the gradients of its
        # intermediates, about the size of what it saved.
        one_layer = act.total(act.layer_saved(d, req.batch, seq, precision, c, req.attention, "none", req.tp))
    A = layer_total + head
    # The logits stay referenced by the model's output object for the rest of the step in the usual loop
    # (`out = model(...); out.loss.backward(); opt.step()`, as in gpu_truth.py): measured on CPU, the
    # optimizer-step peak is exactly G + sqrt(v) + b·s·V·c (tests/data/peak_step_cpu.jsonl).
    logits = 0.0 if req.activations == "korthikanti" else req.batch * seq * d.V * c / req.tp
    # lm_head's gradient is the first one written in backward (none with LoRA: the head is frozen).
    G_head = 0 if req.lora_rank else lm_head_params(shape) * sb.gradients / mp / (n_d if req.zero >= 2 else 1)
    states = {"weights": W, "optimizer": O, "workspace": cublas}
    phases = {
        # loss.backward() begins: every saved tensor is alive and the loss writes d(log-probs), d(logits) in fp32.
        "start of backward": {**states, "activations": A, "gradients": 0, "transient": loss_bwd},
        # top layer: logits freed, lm_head's gradient written, one layer's backward (or recomputation) in flight.
        "backward, top layer": {**states, "activations": layer_total + logits, "gradients": G_head, "transient": one_layer},
        # bottom layer: the saved activations are gone, nearly every gradient is written.
        "end of backward": {**states, "activations": logits, "gradients": G, "transient": one_layer},
        # optimizer.step(): gradients plus the optimizer's temporaries (foreach AdamW's sqrt(v)).
        "optimizer step": {**states, "activations": logits, "gradients": G, "transient": ws_opt},
    }
    phase = max(phases, key=lambda k: sum(phases[k].values()))
    alive = phases[phase]
    peak = sum(alive.values())
    over = _overhead(req, peak)
    return Breakdown(W, G, O, A, 0, cublas, peak, over, peak + over, phase, P, trainable, alive, notes)


def adafactor_state_values(shape) -> float:
    """Adafactor's factored second moment: rows + cols per matrix, full size for vectors (Shazeer & Stern 2018, Alg. 4)."""
    d, a, kv, i = shape.d_model, shape.attn_width, shape.kv_width, shape.d_ffn
    mats = [(d, a), (d, kv), (d, kv), (a, d)] + [(d, i)] * (3 if shape.mlp in ("swiglu", "geglu") else 2)
    per_layer = sum(r + c for r, c in mats) + 2 * d
    emb = shape.vocab + d
    return shape.layers * per_layer + emb * (1 if shape.tied_embeddings else 2) + d


# ---------------------------------------------------------------------------- fitting

def largest(fits, lo: int = 1, hi: int = 1 << 22) -> int | None:
    """Largest integer n in [lo, hi] with fits(n) true (fits monotone decreasing); None if none."""
    if not fits(lo):
        return None
    if fits(hi):
        return hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid
    return lo


def advice(req: Request, capacity: float) -> dict:
    """When it does not fit: fewest GPUs (ZeRO-3 training, tensor parallel serving), largest batch, longest context."""
    def ok(r: Request) -> bool:
        try:
            return estimate(r).total_bytes <= capacity
        except InputError:
            return False

    out: dict = {"min_gpus": None, "max_batch": None, "max_context": None}
    mp = req.tp * req.pp
    for k in range(1, 4097):
        if req.train:
            candidate = replace(req, gpus=k * mp, zero=3 if k > 1 else req.zero)
        else:
            if k & (k - 1):
                continue  # tensor parallel degrees are powers of two
            candidate = replace(req, tp=k, gpus=k * req.pp)
        if ok(candidate):
            out["min_gpus"] = candidate.gpus
            break
    if req.shape is not None:
        out["max_batch"] = largest(lambda b: ok(replace(req, batch=b)), 1, 1 << 16)
        out["max_context"] = largest(lambda s: ok(replace(req, seq=s)), 1, 1 << 22)
    return out
