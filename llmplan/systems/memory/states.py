"""What training keeps per parameter besides activations: bytes per stored value (quantised formats with
their scales), weights, gradients and optimizer states by precision mode and optimizer, ZeRO's sharding of
them, and the temporaries of the optimizer step.

Sources: Rajbhandari et al. 2020 (ZeRO: bytes per parameter, sharding), Frantar et al. 2022 and Dettmers
et al. 2023 (quantised formats), torch/optim (the optimizer step). Pure functions, no printing.
"""

from __future__ import annotations


from llmplan.errors import InputError
from llmplan.records import record
from llmplan.systems.memory import activations as act

WEIGHT_DTYPES = ("fp32", "fp16", "bf16", "fp8", "int8", "int4", "nf4")
QUANTISED = ("fp8", "int8", "int4", "nf4")
OPTIMIZERS = ("adamw", "adamw-8bit", "sgd", "sgd-momentum", "adafactor", "lion")
PRECISIONS = act.PRECISIONS
# torch.optim Adam/AdamW implementations. With neither fused nor foreach given, torch/optim/adam.py `adam()`
# (read in torch 2.13; the same rule in 2.11) calls _default_to_fused_or_foreach(params, differentiable,
# use_fused=False): foreach when every parameter is on a foreach device (CUDA), never fused. Passing
# fused=False alone leaves foreach None -> False: the single-tensor for-loop.
OPTIMIZER_IMPLS = ("for-loop", "foreach", "fused")
DEFAULT_OPTIMIZER_IMPL = "foreach"


# ---------------------------------------------------------------------------- bytes per value

def dtype_bytes(name: str) -> float:
    """Bytes per stored value: fp32 4, fp16/bf16 2, fp8/int8 1, int4/nf4 0.5 (IEEE 754 / OCP FP8 / GPTQ / QLoRA storage sizes)."""
    table = {"fp32": 4, "fp16": 2, "bf16": 2, "fp8": 1, "int8": 1, "int4": 0.5, "nf4": 0.5}
    if name not in table:
        raise InputError(f"{name!r} is not a weight format; use one of {', '.join(WEIGHT_DTYPES)}")
    return table[name]


def quantised_bits_per_weight(name: str, group_size: int = 128) -> float:
    """Bits per weight including the per-group scales (Frantar et al. 2022, GPTQ; Dettmers et al. 2023, QLoRA §3).

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


@record
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
    """Bytes per trainable parameter for a precision mode (Rajbhandari et al. 2020, §3.1: 2+2+12 bytes for mixed-precision Adam).

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
    # Bytes per value of the state the step's temporaries are made of (exp_avg_sq's or the variance's dtype).
    ws = sb if optimizer in ("adamw", "adafactor") else 0
    return StateBytes(w, g, opt, ws)


def optimizer_step_temporaries(optimizer: str, impl: str, state_value_bytes: float, local_values: float,
                               largest_tensor_values: float | None) -> float:
    """Bytes the optimizer step allocates beyond its states (torch/optim/adam.py, torch 2.13).

    for-loop (_single_tensor_adam): `denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)` makes
    two temporaries the size of the tensor being updated (sqrt's result and the quotient), one tensor at a
    time: 2 x the largest tensor. foreach (_multi_tensor_adam): `exp_avg_sq_sqrt = torch._foreach_sqrt(...)`
    for the whole device/dtype group at once: one state-sized copy of every tensor (AdamW's decoupled
    decay is an in-place _foreach_mul_). fused (_fused_adamw_): in place, nothing. Adafactor
    (torch/optim/_adafactor.py): the variance estimate row_var @ col_var is one full-size tensor, one
    tensor at a time in the for-loop (its default), every tensor at once with foreach. SGD (torch/optim/sgd.py:
    momentum updated in place; no weight decay, no nesterov), bitsandbytes 8-bit and Lion: 0.
    """
    if impl == "fused" or optimizer not in ("adamw", "adafactor"):
        return 0.0
    copies = 2 if optimizer == "adamw" else 1
    if impl == "foreach":
        return local_values * state_value_bytes
    if largest_tensor_values is None:
        return 0.0
    return copies * largest_tensor_values * state_value_bytes


def default_optimizer_impl(optimizer: str) -> str:
    """What torch.optim runs with neither fused nor foreach given (torch 2.13): foreach for AdamW on CUDA
    (adam.py, _default_to_fused_or_foreach with use_fused=False); Adafactor stays on the for-loop unless
    foreach=True (its docstring: "Adafactor will default to the slower single tensor for-loop")."""
    return "for-loop" if optimizer == "adafactor" else DEFAULT_OPTIMIZER_IMPL


def adafactor_state_values(shape) -> float:
    """Adafactor's factored second moment: rows + cols per matrix, full size for vectors (Shazeer & Stern 2018, Alg. 4)."""
    d, a, kv, i = shape.d_model, shape.attn_width, shape.kv_width, shape.d_ffn
    mats = [(d, a), (d, kv), (d, kv), (a, d)] + [(d, i)] * (3 if shape.mlp in ("swiglu", "geglu") else 2)
    per_layer = sum(r + c for r, c in mats) + 2 * d
    emb = shape.vocab + d
    return shape.layers * per_layer + emb * (1 if shape.tied_embeddings else 2) + d
