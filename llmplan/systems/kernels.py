"""Kernel rates from kernel-level measurements (presets/kernels.toml), each constant named there with its source.

- `arch_of`: which measured kernel family a catalog GPU belongs to (sm80, sm90), or "" when none was measured;
- `attention_rate`: FLOP/s of a causal attention kernel (FlashAttention-2/-3, cuDNN) forward and backward at a
  sequence length and head dimension, interpolated in log2(seq) between the measured points (clamped at the ends);
- the GEMM floor per launch, the fp8 ceiling and cast traffic, the host cost of an eager op, the element-wise bytes.
Nothing here is fitted to an end-to-end run. Arithmetic on numpy arrays where the layout search passes them.
"""

from __future__ import annotations

import functools
from typing import Any

from llmplan.errors import InputError


@functools.lru_cache(maxsize=1)
def data() -> dict[str, Any]:
    """presets/kernels.toml, parsed once."""
    from llmplan.presets import _load_toml, builtin_dir

    return _load_toml(builtin_dir() / "kernels.toml")


def arch_of(gpu_id: str) -> str:
    """'sm80' / 'sm90' for a GPU whose kernels were measured, else ''."""
    for arch, ids in data()["arch"].items():
        if isinstance(ids, list) and gpu_id in ids:
            return arch
    return ""


def gemm_floor() -> float:
    return float(data()["gemm"]["floor_seconds"])


def comm_sms() -> int:
    """SMs a collective's kernels hold while they run (presets/kernels.toml [collectives])."""
    return int(data()["collectives"]["comm_sms"])


def straggler_spread() -> float:
    """How far below the measured GPU the slowest of a synchronous group runs (presets/kernels.toml [gemm])."""
    return float(data()["gemm"]["straggler_spread"])


def fp8_matmul_efficiency(arch: str) -> float | None:
    return data()["gemm"].get(f"fp8_matmul_efficiency_{arch}")


def fp8_cast_bytes(recipe: str) -> float:
    """HBM bytes per operand value to quantise it for an fp8 GEMM: delayed scaling casts, current scaling also reads for amax."""
    g = data()["gemm"]
    return float(g["cast_bytes_current"] if recipe in ("te-current", "torchao-tensorwise", "torchao-rowwise") else g["cast_bytes_delayed"])


def host() -> dict[str, float]:
    return data()["host"]


def elementwise() -> dict[str, float]:
    return data()["elementwise"]


# The kernel a stack's attention setting runs on each arch: Transformer Engine picks cuDNN fused attention on
# Hopper and FlashAttention-2 on Ampere; PyTorch SDPA's flash backend is FlashAttention-2.
KERNEL_FOR = {"te": {"sm90": "cudnn", "sm80": "fa2"}, "sdpa": {"sm90": "fa2", "sm80": "fa2"}}


def attention_kernel(setting: str, arch: str) -> str:
    return KERNEL_FOR.get(setting, {}).get(arch, setting)


def attention_rate(kernel: str, arch: str, seq, head_dim: int):
    """(forward FLOP/s, backward FLOP/s) of a causal attention kernel at `seq` tokens (scalar or array), or None
    when that kernel was not measured on that arch. FLOPs as FlashAttention counts them (causal: half)."""
    import numpy as np

    table = data()["attention"]
    entry = table.get(kernel, {}).get(arch)
    if not entry:
        return None
    x = np.log2(np.asarray(table["seq"], dtype=float))
    at = np.log2(np.maximum(np.asarray(seq, dtype=float), 1.0))
    hd = "hd64" if head_dim <= 80 and f"causal_hd64_fwd_bwd" in entry else "hd128"
    plain = (lambda v: float(v)) if np.ndim(at) == 0 else (lambda v: v)  # scalars stay Python floats (rows)
    if f"causal_{hd}_fwd_bwd" in entry:
        both = plain(np.interp(at, x, np.asarray(entry[f"causal_{hd}_fwd_bwd"], dtype=float)) * 1e12)
        # one rate for forward + backward (3.5 f at it): forward and backward take their FLOP share of the time
        return both, both
    fwd = plain(np.interp(at, x, np.asarray(entry[f"causal_{hd}_fwd"], dtype=float)) * 1e12)
    bwd = plain(np.interp(at, x, np.asarray(entry[f"causal_{hd}_bwd"], dtype=float)) * 1e12)
    return fwd, bwd


def check() -> None:
    """The kernels file must have the tables step_time reads (a broken install is bad input, one line)."""
    d = data()
    for key in ("arch", "gemm", "attention", "host", "elementwise", "collectives"):
        if key not in d:
            raise InputError(f"presets/kernels.toml has no [{key}] table; reinstall llmplan")
