"""The options that turn hardware time into a compute budget, shared by `optimal`, `compute` and `plan`.

    --gpu h100 --gpus 256 --days 30 | --hours 720 | --gpu-hours 184k   [--mfu 0.4] [--goodput 0.9]

The days are calendar time: budget = GPUs x dense peak x MFU x time x goodput. The rules that turn these
options into a budget (llmplan.systems.budget.hardware_budget) live in the core; here only the options and the title.
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


def hardware_title(budget: Any) -> str:
    """'256 x h100-sxm for 30 days (184,320 GPU-hours) at 40% MFU, 90% goodput'."""
    from llmplan.units import format_duration

    return (
        f"{budget.gpus:,} x {budget.gpu} for {format_duration(budget.seconds)} ({budget.gpu_hours:,.0f} GPU-hours) "
        f"at {budget.mfu * 100:.3g}% MFU, {budget.goodput:.0%} goodput"
    )
