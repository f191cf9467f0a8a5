"""Compute budgets from hardware time, the GPU time a compute budget takes, and the MFU that published GPU-hours imply.

One relation both ways: FLOPs = GPU-seconds x dense peak x MFU x goodput, where goodput is the
fraction of calendar time spent training (the rest: failures, restarts, evaluation). A budget
given as days on N GPUs is calendar time, so a plan at that budget takes exactly that long.
Back: time = C / (n_gpu · peak · MFU).
"""

from __future__ import annotations

import math
from typing import Any

from llmplan.errors import InputError
from llmplan.records import record
from llmplan.systems.gpu import peak_flops
from llmplan.units import parse_count, parse_positive

SECONDS_PER_HOUR = 3600.0
SECONDS_PER_DAY = 86400.0

# Llama 3 (Dubey et al. 2024, arXiv:2407.21783, Sec. 3.3.4): "more than 90% effective training time"
# over 54 days of the 405B run, with 466 job interruptions. OPT-175B needed about 90 restarts.
DEFAULT_GOODPUT = 0.9
DEFAULT_MFU = 0.4  # published runs reach 0.21-0.56 (Chowdhery et al. 2022, PaLM Table 3; Korthikanti et al. 2022, Table 5)


def budget_flops(gpus: float, peak: float, mfu: float, seconds: float, goodput: float = 1.0) -> float:
    """C = n_gpu x peak x MFU x t x goodput (t calendar seconds; MFU as in PaLM App. B)."""
    return gpus * peak * mfu * seconds * goodput


def implied_mfu(flops: float, gpu_hours: float, peak: float) -> float:
    """MFU = 6ND / (GPU-hours x 3600 x dense peak): what published GPU-hours imply, downtime included."""
    return flops / (gpu_hours * SECONDS_PER_HOUR * peak)


def gpu_seconds(C: float, peak: float, mfu: float) -> float:
    """GPU-seconds = C / (peak · MFU) (the definition of MFU: Chowdhery et al. 2022, PaLM App. B)."""
    return C / (peak * mfu)


def wall_seconds(C: float, gpus: int, peak: float, mfu: float) -> float:
    """Wall time = C / (n_gpu · peak · MFU), perfect scaling across GPUs assumed."""
    return gpu_seconds(C, peak, mfu) / gpus


def gpu_cost_fields(C: float, gpu: Any, gpus: int, mfu: float, dtype: str, price: float | None = None, goodput: float = 1.0) -> dict[str, Any]:
    """What C FLOPs means on `gpus` of a catalog GPU: GPU-hours, wall time and, with a price, cost. With
    `goodput` below 1 these are calendar time (C / goodput of GPU time), as `budget_flops` counts it the other way."""
    peak, used = peak_flops(gpu, dtype)
    seconds = gpu_seconds(C, peak, mfu) / goodput
    fields: dict[str, Any] = {
        "gpu": gpu.id,
        "gpus": gpus,
        "dtype": used,
        "peak_flops_per_second": peak,
        "mfu": mfu,
        "goodput": goodput,
        "gpu_hours": seconds / 3600.0,
        "wall_seconds": wall_seconds(C, gpus, peak, mfu) / goodput,
    }
    if price is not None:
        fields["price_usd_per_gpu_hour"] = price
        fields["cost_usd"] = seconds / 3600.0 * price
    return fields


def check_fraction(value: float, what: str, option: str) -> float:
    if value > 1.0:
        raise InputError(f"{option} {value:g} is above 1; give {what} as a fraction, e.g. {option} 0.4")
    if not (0.0 < value <= 1.0) or not math.isfinite(value):
        raise InputError(f"{option} {value:g} is not a fraction in (0, 1]; give {what}, e.g. {option} 0.4")
    return value


@record
class HardwareBudget:
    """A budget from hardware time: GPU, count, calendar seconds, MFU, goodput and the FLOPs they buy."""

    gpu: str
    gpus: int
    peak: float
    dtype: str
    seconds: float
    mfu: float
    goodput: float

    @property
    def flops(self) -> float:
        return budget_flops(self.gpus, self.peak, self.mfu, self.seconds, self.goodput)

    @property
    def gpu_hours(self) -> float:
        return self.gpus * self.seconds / SECONDS_PER_HOUR

    def with_mfu(self, mfu: float) -> "HardwareBudget":
        from dataclasses import replace

        return replace(self, mfu=mfu)

    def fields(self) -> dict[str, Any]:
        """The row keys of a budget from hardware time (before the plan's own keys)."""
        return {
            "gpu": self.gpu,
            "gpus": self.gpus,
            "dtype": self.dtype,
            "peak_flops_per_second": self.peak,
            "mfu": self.mfu,
            "goodput": self.goodput,
            "wall_seconds": self.seconds,
            "gpu_hours": self.gpu_hours,
        }


def parse_mfu(text: str | None) -> float:
    """--mfu as a fraction of the peak (default 0.4; published runs reach 0.21-0.56: PaLM Table 3, Korthikanti et al. 2022 Table 5)."""
    if text is None:
        return DEFAULT_MFU
    return check_fraction(parse_positive(text, "an MFU (a fraction such as 0.4)"), "an MFU", "--mfu")


def parse_goodput(text: str | None) -> float:
    """--goodput as the share of calendar time spent training (default DEFAULT_GOODPUT)."""
    if text is None:
        return DEFAULT_GOODPUT
    return check_fraction(parse_positive(text, "a goodput (the share of time spent training, e.g. 0.9)"), "the share of time spent training", "--goodput")


def wants_hardware_budget(days: str | None, hours: str | None, gpu_hours: str | None) -> bool:
    """Whether hardware time was given at all (--days, --hours or --gpu-hours)."""
    return days is not None or hours is not None or gpu_hours is not None


def hardware_budget(catalog: Any, gpu: str | None, gpus: int | None, days: str | None, hours: str | None, gpu_hours: str | None,
                    mfu: float, goodput: str | None, dtype: str = "bf16") -> HardwareBudget | None:
    """The budget that hardware time buys, from the texts of --gpu, --gpus, --days | --hours | --gpu-hours,
    --goodput and --dtype (mfu already a fraction), or None when no hardware time was given.

    The rules: days or hours, not both; either of them or GPU-hours, not both; hardware time needs a
    GPU from the catalog; goodput only applies to hardware time."""
    from llmplan.dtypes import PEAK_DTYPES, canonical

    if not wants_hardware_budget(days, hours, gpu_hours):
        if goodput is not None:
            raise InputError("--goodput applies to a budget from hardware time; add --days, --hours or --gpu-hours")
        return None
    if days is not None and hours is not None:
        raise InputError("give --days or --hours, not both")
    if gpu is None:
        raise InputError("a budget from hardware time needs --gpu (e.g. --gpu h100 --gpus 256 --days 30)")
    seconds = None
    if days is not None:
        seconds = parse_positive(days, "a number of days (e.g. 30)") * SECONDS_PER_DAY
    elif hours is not None:
        seconds = parse_positive(hours, "a number of hours (e.g. 720)") * SECONDS_PER_HOUR
    hours_total = parse_count(gpu_hours, "a number of GPU-hours (e.g. 184k)") if gpu_hours is not None else None
    if seconds is not None and hours_total is not None:
        raise InputError("give --days/--hours with --gpus, or --gpu-hours, not both")
    return budget_from_seconds(catalog.get("gpus", gpu), gpus, seconds, hours_total, mfu, parse_goodput(goodput), canonical(dtype, PEAK_DTYPES))


def budget_from_seconds(gpu: Any, gpus: int | None, seconds: float | None, gpu_hours: float | None, mfu: float, goodput: float, dtype: str = "bf16") -> HardwareBudget:
    """Resolve --gpus with --days/--hours, or --gpu-hours (with or without --gpus), into a budget.

    With --gpu-hours and no --gpus the wall time is per GPU (one GPU); with both, it is
    GPU-hours / GPUs."""
    check_fraction(mfu, "an MFU", "--mfu")
    check_fraction(goodput, "the share of time spent training", "--goodput")
    if (seconds is None) == (gpu_hours is None):
        raise InputError("give the hardware time as --days or --hours (with --gpus), or as --gpu-hours, not both")
    if gpus is not None and gpus < 1:
        raise InputError(f"--gpus must be at least 1, not {gpus}")
    if gpu_hours is not None:
        n = gpus or 1
        seconds = gpu_hours * SECONDS_PER_HOUR / n
    else:
        if gpus is None:
            raise InputError("--days or --hours need --gpus (how many GPUs), e.g. --gpus 256 --days 30")
        n = gpus
    if not (seconds > 0) or not math.isfinite(seconds):
        raise InputError("the hardware time must be positive")
    peak, used = peak_flops(gpu, dtype)
    return HardwareBudget(gpu=gpu.id, gpus=n, peak=peak, dtype=used, seconds=seconds, mfu=mfu, goodput=goodput)


def published_run_fields(model: Any, flops: float, catalog: Any) -> dict[str, Any]:
    """For a model preset: its GPU, published GPU-hours and the MFU they imply at C = flops (6ND);
    None where the preset records no GPU-hours or no catalog GPU."""
    hours, gpu_id = model.get("gpu_hours"), model.get("gpu")
    fields: dict[str, Any] = {"gpu": gpu_id, "gpu_hours": hours, "implied_mfu": None}
    if hours and gpu_id:
        peak, _ = peak_flops(catalog.get("gpus", gpu_id), "bf16")
        fields["implied_mfu"] = implied_mfu(flops, hours, peak)
    return fields
