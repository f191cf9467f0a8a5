"""The keys every planning row starts with (the CLI contract), shared by every solver.

Below llmplan.scaling.optimal, llmplan.scaling.data_constrained and llmplan.scaling.inference_aware, so that no solver imports another
to build its rows.
"""

from __future__ import annotations

from typing import Any

from llmplan.units import PF_DAY


def allocation(law_id: str, C: float, N: float, D: float) -> dict[str, Any]:
    """law, compute (FLOPs and PF-days), N, D and D/N."""
    return {"law": law_id, "flops": C, "pf_days": C / PF_DAY, "params": N, "tokens": D, "tokens_per_param": D / N}
