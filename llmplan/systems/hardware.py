"""Training compute and what it costs on real accelerators (GPU catalog access, time, money).

Formulas: C = 6·N·D (Kaplan et al. 2020, §2.1), plus 12·L·d·s per token for attention (PaLM App. B), 8·N·D with full
activation recomputation (one more forward pass); time = C / (n_gpu · peak · MFU).
"""

from __future__ import annotations

from typing import Any

from llmplan.errors import InputError
from llmplan.systems.gpu import peak_flops
from llmplan.units import PF_DAY
DEFAULT_MFU = 0.4  # published runs reach 0.21-0.56 (Chowdhery et al. 2022, PaLM Table 3; Korthikanti et al. 2022, Table 5)
RECOMPUTE = {"none": 6.0, "full": 8.0}  # training FLOPs per parameter per token


def flops_per_token(N: float, layers: int | None = None, d_model: int | None = None, context: int | None = None, recompute: str = "none") -> float:
    """6N (Kaplan 2020 §2.1), + 12·L·d·s attention (PaLM App. B); full recompute: 8N (+16·L·d·s)."""
    if recompute not in RECOMPUTE:
        raise InputError(f"{recompute!r} is not a recompute mode; expected one of {', '.join(RECOMPUTE)}")
    factor = RECOMPUTE[recompute]
    per_token = factor * N
    if layers and d_model and context:
        per_token += 2.0 * factor * layers * d_model * context  # 12·L·d·s at 6N; 16·L·d·s at 8N
    return per_token


def training_flops(N: float, D: float, per_token: float | None = None) -> float:
    """C = (FLOPs per token) · D, 6·N·D by default (Kaplan et al. 2020; Brown et al. 2020 Table D.1)."""
    return (6.0 * N if per_token is None else per_token) * D


def gpu_seconds(C: float, peak: float, mfu: float) -> float:
    """GPU-seconds = C / (peak · MFU) (the definition of MFU: Chowdhery et al. 2022, PaLM App. B)."""
    return C / (peak * mfu)


def wall_seconds(C: float, gpus: int, peak: float, mfu: float) -> float:
    """Wall time = C / (n_gpu · peak · MFU), perfect scaling across GPUs assumed."""
    return gpu_seconds(C, peak, mfu) / gpus


def pf_days(C: float) -> float:
    return C / PF_DAY


def gpu_cost_fields(C: float, gpu: Any, gpus: int, mfu: float, dtype: str, price: float | None = None) -> dict[str, Any]:
    """What C FLOPs means on `gpus` of a catalog GPU: GPU-hours, wall time and, with a price, cost."""
    peak, used = peak_flops(gpu, dtype)
    seconds = gpu_seconds(C, peak, mfu)
    fields: dict[str, Any] = {
        "gpu": gpu.id,
        "gpus": gpus,
        "dtype": used,
        "peak_flops_per_second": peak,
        "mfu": mfu,
        "gpu_hours": seconds / 3600.0,
        "wall_seconds": wall_seconds(C, gpus, peak, mfu),
    }
    if price is not None:
        fields["price_usd_per_gpu_hour"] = price
        fields["cost_usd"] = seconds / 3600.0 * price
    return fields
