"""What the commands that turn hardware time into a compute budget share (optimal, compute, plan, data):
the hardware-time options as the core takes them, and how a budget is said in a title."""

from __future__ import annotations

from typing import Any

from llmplan.commands import args

# The hardware-time options (the command line's HARDWARE_TIME group), by keyword.
HARDWARE_TIME = ("gpu", "gpus", "days", "hours", "gpu_hours", "mfu", "goodput", "dtype")


def hardware_texts(gpu: Any, gpus: Any, days: Any, hours: Any, gpu_hours: Any, mfu: Any, goodput: Any, dtype: Any) -> tuple:
    """The hardware-time options as llmplan.systems.budget takes them: texts, and --gpus a whole number."""
    return (args.text(gpu), args.integer(gpus, "--gpus"), args.text(days), args.text(hours), args.text(gpu_hours),
            args.text(mfu), args.text(goodput), args.text(dtype))


def hardware_title(budget: Any) -> str:
    """'256 x h100-sxm for 30 days (184,320 GPU-hours) at 40% MFU, 90% goodput'."""
    from llmplan.units import format_duration

    return (
        f"{budget.gpus:,} x {budget.gpu} for {format_duration(budget.seconds)} ({budget.gpu_hours:,.0f} GPU-hours) "
        f"at {budget.mfu * 100:.3g}% MFU, {budget.goodput:.0%} goodput"
    )


def budget_title(budgets: list[float]) -> str:
    """'3000 PF-days = 2.59e23 FLOPs' for one budget; '5 budgets from ... to ...' for several."""
    from llmplan.scaling.laws import PF_DAY
    from llmplan.units import format_flops

    def one(c: float) -> str:
        from llmplan.io.render import humanize

        return f"{humanize('pf_days', c / PF_DAY)} PF-days = {format_flops(c)}"

    if not budgets:
        return ""
    if len(budgets) == 1:
        return one(budgets[0])
    return f"{len(budgets)} budgets from {format_flops(min(budgets))} to {format_flops(max(budgets))}"
