"""Rows every solver shares: the keys every planning row starts with (the CLI contract), and the
guards every answer passes through (floating-point range, the law's fitted range).

Below llmplan.scaling.optimal, llmplan.scaling.data_constrained and llmplan.scaling.inference_aware, so that no solver imports another
to build its rows.
"""

from __future__ import annotations

import math
from typing import Any

from llmplan.errors import InputError
from llmplan.units import PF_DAY


def allocation(law_id: str, C: float, N: float, D: float) -> dict[str, Any]:
    """law, compute (FLOPs and PF-days), N, D and D/N."""
    return {"law": law_id, "flops": C, "pf_days": C / PF_DAY, "params": N, "tokens": D, "tokens_per_param": D / N}


def mark_extrapolation(law: Any, rows: list[dict[str, Any]]) -> str | None:
    """Add `extrapolated` to each row (true outside the range the law was fitted on, null when the
    law records none) and return a one-line warning when any row lies outside, else None."""
    bounds = law.fitted_bounds() if hasattr(law, "fitted_bounds") else {}
    if not bounds:
        for r in rows:
            r["extrapolated"] = None
        return None
    outside = 0
    checks = list(bounds.items())
    for r in rows:
        flag = False
        for q, (low, high) in checks:
            value = r.get(q)
            if value.__class__ in (int, float) and not (low <= value <= high):
                flag = True
                break
        r["extrapolated"] = flag
        outside += flag
    if not outside:
        return None
    which = "it" if len(rows) == 1 else f"{outside} of {len(rows)} rows"
    return f"law {law.id} was fitted on {law.fitted_range_text()}; {which} lie{'s' if len(rows) == 1 else ''} outside that range, so the law's numbers there are an extrapolation"


def checked(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Refuse results outside floating-point range (inputs far beyond anything trainable)."""
    isfinite = math.isfinite  # a hot loop: 100,000-row sweeps
    for r in rows:
        for key, value in r.items():
            if value.__class__ is float and (not isfinite(value) or (value == 0.0 and key in ("flops", "params", "tokens"))):
                raise InputError(f"the {key} for these inputs is out of floating-point range ({value}); give values nearer real training runs")
        for key in ("params", "tokens"):  # a plan needs at least one parameter and one token
            value = r.get(key)
            if value is not None and value.__class__ in (int, float) and value < 1:
                raise InputError(f"the plan has {value:.3g} {'parameters' if key == 'params' else 'tokens'}, less than one; the budget or size is far too small (e.g. --budget 1e18 or more)")
    return rows


class out_of_range:
    """Context manager: OverflowError / ZeroDivisionError from extreme inputs become InputError (exit 2)."""

    def __enter__(self) -> "out_of_range":
        return self

    def __exit__(self, kind, error, trace) -> bool:
        if kind is not None and issubclass(kind, (OverflowError, ZeroDivisionError)):
            raise InputError("the inputs are so extreme that the result is out of floating-point range; give values nearer real training runs") from None
        return False
