"""Compute-optimal solves on top of a Law: for a budget, a fixed N or D, a target loss.

Each question is one function returning rows (flat dicts in base units). `solve` dispatches on
which of budget / params / tokens / target_loss were given; later questions (data-constrained
`unique_tokens`, inference-aware `inference_tokens`) add a keyword and a branch here.
Budgets may be many: `optimal_rows` computes them in one vectorised pass.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from llmplan.errors import InputError
from llmplan.scaling.laws import PF_DAY, Law
from llmplan.rows import allocation  # noqa: F401 (the keys every planning row starts with)

# Above this many budgets the arithmetic runs on numpy arrays (imported only then).
VECTOR_MIN = 512


MAX_BUDGETS = 1_000_000  # a sweep larger than this is a typo, and would exhaust memory (1M rows: ~3 GB as JSON)


def log_budgets(start: float, stop: float, n: int) -> list[float]:
    """n budgets spaced evenly in log between start and stop, both included exactly, and every
    whole number of decades from the start exact too (1e20:1e25:6 is 1e20, 1e21, ... 1e25)."""
    if n < 1:
        raise InputError(f"a budget range needs at least 1 point, not {n}")
    if n > MAX_BUDGETS:
        raise InputError(f"a budget range of {n:,} points is more than {MAX_BUDGETS:,}; ask for fewer")
    if n == 1:
        return [float(start)]
    lo, hi = math.log10(start), math.log10(stop)
    out = [float(start)]
    for i in range(1, n - 1):
        decades = (hi - lo) * i / (n - 1)  # whole decades from the start land on the decimal value
        whole = round(decades)
        out.append(_decades_from(start, whole) if abs(decades - whole) < 1e-9 else 10.0 ** (lo + decades))
    out.append(float(stop))
    return out


def _decades_from(start: float, k: int) -> float:
    """start x 10^k as the float of its decimal text (1e20 -> 1e21 is float('1e21'), bit-equal to the
    same value read from stdin; 1e22 * 10 would be 1.0000000000000001e23)."""
    from decimal import Decimal

    return float(Decimal(repr(float(start))).scaleb(k))



_INF = float("inf")


def parse_budget_spec(text: str) -> list[float]:
    """'3000pfd', '1e24' or 'START:STOP:N' (N log-spaced budgets) -> FLOPs."""
    try:  # fast path for plain FLOPs (a 100,000-line sweep from stdin)
        value = float(text)
        if 0 < value < _INF:
            return [value]
    except ValueError:
        pass
    from llmplan.units import parse_compute

    parts = str(text).split(":")
    if len(parts) == 1:
        return [parse_compute(text)]
    if len(parts) != 3:
        raise InputError(f"{text!r} is not a budget range; write START:STOP:N, e.g. 1e21:1e25:5")
    start, stop = parse_compute(parts[0]), parse_compute(parts[1])
    try:
        n = int(parts[2])
    except ValueError:
        raise InputError(f"{parts[2]!r} is not a whole number of budgets in {text!r}; write START:STOP:N, e.g. 1e21:1e25:5") from None
    if n < 1:
        raise InputError(f"a budget range needs N of at least 1, not {n} in {text!r}")
    return log_budgets(start, stop, n)


def row(law: Law, C: float, N: float, D: float, loss: Any = None) -> dict[str, Any]:
    """One result row (keys fixed: the CLI contract)."""
    if loss is None and law.predicts_loss:
        loss = law.loss(N, D)
    return {
        **allocation(law.id, C, N, D),
        "loss": None if loss is None or not math.isfinite(loss) else float(loss),
        "minimises_loss": law.minimises_loss,
        **isoflop_minimum(law, C),
        "params_convention": law.convention,
    }


def isoflop_minimum(law: Law, C: float) -> dict[str, Any]:
    """isoflop_min_loss, isoflop_min_params: the lowest loss the law's own L(N, D) reaches on this
    row's iso-FLOP line C = 6ND, and the N that reaches it. Where minimises_loss is false (Kaplan)
    it is below the row's loss: the row's split is the paper's fitted allocation, not a minimiser."""
    found = law.isoflop_minimum(C) if law.minimises_loss is not None else None
    if found is None or not all(math.isfinite(v) for v in found):
        return {"isoflop_min_loss": None, "isoflop_min_params": None}
    return {"isoflop_min_loss": found[1], "isoflop_min_params": found[0]}


def optimal_rows(law: Law, budgets: Sequence[float]) -> list[dict[str, Any]]:
    """The compute-optimal (N, D) and loss for each budget C (FLOPs)."""
    if len(budgets) >= VECTOR_MIN:
        import numpy as np

        C = np.asarray(budgets, dtype=float)
        N, D = law.optimal(C)
        L = law.loss(N, D)
        losses = L.tolist() if L is not None else [None] * len(C)
        name, conv, minimises = law.id, law.convention, law.minimises_loss
        if minimises:  # the closed forms: the row is the minimum of its iso-FLOP line
            minima = [{"isoflop_min_loss": l, "isoflop_min_params": n} for n, l in zip(N.tolist(), losses)]
        else:
            minima = [isoflop_minimum(law, c) for c in C.tolist()]
        return [
            {"law": name, "flops": c, "pf_days": c / PF_DAY, "params": n, "tokens": d, "tokens_per_param": d / n, "loss": l,
             "minimises_loss": minimises, **m, "params_convention": conv}
            for c, n, d, l, m in zip(C.tolist(), N.tolist(), D.tolist(), losses, minima)
        ]
    rows = []
    for C in budgets:
        N, D = law.optimal(C)
        rows.append(row(law, C, N, D))
    return rows


def tokens_for_loss(law: Law, N: float, L: float) -> float:
    """Tokens a model of N params needs to reach loss L (solving the law's L(N, D) = L for D)."""
    terms = law.loss_terms(N, 1.0)
    if terms is None:
        raise InputError(f"law {law.id!r} predicts no loss, so it cannot answer --target-loss")
    c = law.constants
    if law.form == "chinchilla":  # B / D^beta = L - E - A / N^alpha  (Hoffmann Eq. 2)
        room = L - c["E"] - c["A"] / N ** c["alpha"]
        if room <= 0:
            raise InputError(f"a {N:.3g}-parameter model cannot reach loss {L:g} under law {law.id!r} (its floor is {L - room:.4g}); ask for a larger model or a higher loss")
        return (c["B"] / room) ** (1.0 / c["beta"])
    # Kaplan Eq. 1.5: D_c / D = L^(1/alpha_D) - (N_c/N)^(alpha_N/alpha_D)
    room = L ** (1.0 / c["alpha_D"]) - terms[1]
    if room <= 0:
        raise InputError(f"a {N:.3g}-parameter model cannot reach loss {L:g} under law {law.id!r}; ask for a larger model or a higher loss")
    return c["D_c"] / room


def params_for_loss(law: Law, D: float, L: float) -> float:
    """Parameters needed to reach loss L with D tokens (solving L(N, D) = L for N)."""
    terms = law.loss_terms(1.0, D)
    if terms is None:
        raise InputError(f"law {law.id!r} predicts no loss, so it cannot answer --target-loss")
    c = law.constants
    if law.form == "chinchilla":  # A / N^alpha = L - E - B / D^beta
        room = L - c["E"] - c["B"] / D ** c["beta"]
        if room <= 0:
            raise InputError(f"{D:.3g} tokens cannot reach loss {L:g} under law {law.id!r} (their floor is {L - room:.4g}); ask for more tokens or a higher loss")
        return (c["A"] / room) ** (1.0 / c["alpha"])
    room = L ** (1.0 / c["alpha_D"]) - terms[2]  # (N_c/N)^(alpha_N/alpha_D) = L^(1/alpha_D) - D_c/D
    if room <= 0:
        raise InputError(f"{D:.3g} tokens cannot reach loss {L:g} under law {law.id!r}; ask for more tokens or a higher loss")
    return c["N_c"] / room ** (c["alpha_D"] / c["alpha_N"])


def solve(
    law: Law,
    budgets: Sequence[float] = (),
    params: float | None = None,
    tokens: float | None = None,
    target_loss: float | None = None,
    unique_tokens: float | None = None,
    inference_tokens: float | None = None,
) -> list[dict[str, Any]]:
    """Answer one planning question for one law; one row per budget (or one row without budgets)."""
    if unique_tokens is not None:  # data-constrained (Muennighoff et al. 2023); law: a constrained.DataConstrainedLaw
        from llmplan.scaling.data_constrained import solve_constrained

        return solve_constrained(law, budgets, unique_tokens, params=params, tokens=tokens, target_loss=target_loss)
    if inference_tokens is not None:  # inference-aware (Sardana et al. 2024)
        from llmplan.scaling.inference_aware import solve_inference

        return solve_inference(law, inference_tokens, budgets=budgets, params=params, tokens=tokens, target_loss=target_loss)
    if target_loss is not None:
        if budgets:
            raise InputError("give --target-loss or --budget, not both (the target decides the budget)")
        if params is not None and tokens is not None:
            raise InputError("with --target-loss give at most one of --params and --tokens")
        if not law.predicts_loss:
            raise InputError(f"law {law.id!r} predicts no loss, so it cannot answer --target-loss; use chinchilla, epoch-2024 or kaplan-2020")
        if not target_loss > law.irreducible:
            raise InputError(
                f"target loss {target_loss:g} is at or below the irreducible loss E = {law.irreducible:g} of law {law.id!r}; no budget reaches it, ask for more than {law.irreducible:g}"
            )
        if params is not None:
            D = tokens_for_loss(law, params, target_loss)
            return [row(law, 6.0 * params * D, params, D)]
        if tokens is not None:
            N = params_for_loss(law, tokens, target_loss)
            return [row(law, 6.0 * N * tokens, N, tokens)]
        C = law.min_compute_for_loss(target_loss)
        N, D = law.optimal(C)
        return [row(law, C, N, D)]
    if params is not None and tokens is not None:
        if budgets:
            raise InputError("--budget, --params and --tokens together over-determine the run (C = 6ND); drop one")
        return [row(law, 6.0 * params * tokens, params, tokens)]
    if params is not None:
        if not budgets:  # the compute-optimal run for this size
            C = law.compute_for_params(params)
            return [row(law, C, params, C / (6.0 * params))]
        return [row(law, C, params, C / (6.0 * params)) for C in budgets]
    if tokens is not None:
        if not budgets:
            C = law.compute_for_tokens(tokens)
            return [row(law, C, C / (6.0 * tokens), tokens)]
        return [row(law, C, C / (6.0 * tokens), tokens) for C in budgets]
    if not budgets:
        raise InputError("give a budget (--budget 3000pfd or 1e24), or --params, --tokens or --target-loss")
    return optimal_rows(law, budgets)


def loss_row(law: Law, N: float, D: float) -> dict[str, Any]:
    """Predicted loss of one (N, D) and the share of its reducible part due to size vs data."""
    terms = law.loss_terms(N, D)
    if terms is None:
        raise InputError(f"law {law.id!r} predicts no loss; use chinchilla, epoch-2024, kaplan-2020 or a fitted law file")
    irreducible, size, data = terms
    L = law.loss(N, D)
    return {
        "law": law.id,
        "params": N,
        "tokens": D,
        "flops": 6.0 * N * D,
        "loss": float(L),
        "irreducible_loss": irreducible,
        "reducible_loss": float(L) - irreducible,
        "size_share": size / (size + data),
        "data_share": data / (size + data),
        "params_convention": law.convention,
    }


# A model counts as "near optimal" when its tokens are within this factor of the law's optimum:
# the shipped laws themselves disagree by about this much (at Gopher's budget Approach 3 gives
# 2.38T tokens, Approach 1 1.42T: a factor of 1.7; Hoffmann et al. 2022 §3, Approaches 1 and 3).
NEAR_OPTIMAL_FACTOR = 2.0
COURSE_RATIO = 20.0  # ~20 tokens per parameter (course notes; Hoffmann et al. 2022 Table 3)


def verdict(tokens_ratio: float, factor: float = NEAR_OPTIMAL_FACTOR) -> str:
    """'under-trained 11.7x', 'near optimal' or 'over-trained 7.5x' from tokens / optimal tokens."""
    if tokens_ratio < 1.0 / factor:
        return f"under-trained {1.0 / tokens_ratio:.1f}x"
    if tokens_ratio > factor:
        return f"over-trained {tokens_ratio:.1f}x"
    return "near optimal"


def compare_row(law: Law, model_id: str, name: str, N: float, D: float) -> dict[str, Any]:
    """A trained model against the law's compute-optimal split of the same compute C = 6ND."""
    C = 6.0 * N * D
    N_opt, D_opt = law.optimal(C)
    loss = law.loss(N, D) if law.predicts_loss else None
    optimal_loss = law.loss(N_opt, D_opt) if law.predicts_loss else None
    ratio = D / D_opt
    return {
        "model": model_id,
        "name": name,
        "params": N,
        "tokens": D,
        "tokens_per_param": D / N,
        "flops": C,
        "pf_days": C / PF_DAY,
        "optimal_params": N_opt,
        "optimal_tokens": D_opt,
        "tokens_ratio": ratio,
        "verdict": verdict(ratio),
        "tokens_20x": COURSE_RATIO * N,
        "loss": None if loss is None else float(loss),
        "optimal_loss": None if optimal_loss is None else float(optimal_loss),
        "minimises_loss": law.minimises_loss,
        "law": law.id,
    }
