"""The options that turn hardware time into a compute budget, shared by `optimal`, `compute` and `plan`.

    --gpu h100 --gpus 256 --days 30 | --hours 720 | --gpu-hours 184k   [--mfu 0.4] [--goodput 0.9]

The days are calendar time: budget = GPUs x dense peak x MFU x time x goodput (llmplan.systems.budget).
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

GpuOption = Annotated[Optional[str], typer.Option("--gpu", "-g", help="GPU from the catalog (llmplan gpus), e.g. a100, h100, v100.", show_default=False)]
GpusOption = Annotated[Optional[int], typer.Option("--gpus", "-k", help="Number of GPUs (default 1; wall time assumes the work spreads over all of them).", show_default=False)]
DaysOption = Annotated[Optional[str], typer.Option("--days", help="Calendar days on --gpus GPUs: the budget is GPUs x dense peak x MFU x time x goodput.", show_default=False)]
HoursOption = Annotated[Optional[str], typer.Option("--hours", help="Calendar hours on --gpus GPUs (instead of --days).", show_default=False)]
GpuHoursOption = Annotated[Optional[str], typer.Option("--gpu-hours", help="GPU-hours (e.g. 184k) instead of --gpus and --days; with --gpus the wall time is GPU-hours / GPUs.", show_default=False)]
MfuOption = Annotated[Optional[str], typer.Option("--mfu", help="Model FLOPs utilisation, a fraction of the dense peak (default 0.4); 'auto' (optimal, plan) takes it from the throughput model's best layout for the model the budget buys.", show_default=False)]
GoodputOption = Annotated[Optional[str], typer.Option("--goodput", help="Share of calendar time spent training, the rest lost to failures and restarts (default 0.9: Llama 3 reports more than 90% effective training time).", show_default=False)]
DtypeOption = Annotated[str, typer.Option("--dtype", help="Which peak to use: bf16 (fp16 on GPUs without bf16), fp16, tf32, fp32, fp8 (or fp8-e4m3, fp8-e5m2); PyTorch names such as bfloat16 work too.")]


def parse_mfu(text: str | None) -> float:
    """--mfu as a fraction of the peak (default 0.4; published runs reach 0.21-0.56: PaLM Table 3, Korthikanti et al. 2022 Table 5)."""
    from llmplan.systems.budget import DEFAULT_MFU, check_fraction
    from llmplan.units import parse_positive

    if text is None:
        return DEFAULT_MFU
    return check_fraction(parse_positive(text, "an MFU (a fraction such as 0.4)"), "an MFU", "--mfu")


def parse_goodput(text: str | None) -> float:
    from llmplan.systems.budget import DEFAULT_GOODPUT, check_fraction
    from llmplan.units import parse_positive

    if text is None:
        return DEFAULT_GOODPUT
    return check_fraction(parse_positive(text, "a goodput (the share of time spent training, e.g. 0.9)"), "the share of time spent training", "--goodput")


def wants_hardware_budget(days: str | None, hours: str | None, gpu_hours: str | None) -> bool:
    return days is not None or hours is not None or gpu_hours is not None


def hardware_budget(cat: Any, gpu: str | None, gpus: int | None, days: str | None, hours: str | None, gpu_hours: str | None, mfu: float, goodput: str | None, dtype: str = "bf16") -> Any:
    """The HardwareBudget these options describe, or None when no hardware time was given."""
    from llmplan.systems.budget import SECONDS_PER_DAY, SECONDS_PER_HOUR
    from llmplan.systems.budget import hardware_budget as resolve
    from llmplan.errors import InputError
    from llmplan.units import parse_count, parse_positive

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
    from llmplan.dtypes import PEAK_DTYPES, canonical

    return resolve(cat.get("gpus", gpu), gpus, seconds, hours_total, mfu, parse_goodput(goodput), canonical(dtype, PEAK_DTYPES))


def hardware_title(budget: Any) -> str:
    """'256 x h100-sxm for 30 days (184,320 GPU-hours) at 40% MFU, 90% goodput'."""
    from llmplan.units import format_duration

    return (
        f"{budget.gpus:,} x {budget.gpu} for {format_duration(budget.seconds)} ({budget.gpu_hours:,.0f} GPU-hours) "
        f"at {budget.mfu * 100:.3g}% MFU, {budget.goodput:.0%} goodput"
    )
