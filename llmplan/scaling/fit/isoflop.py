"""Approach 2 (IsoFLOP), Hoffmann et al. 2022 §3.2: per compute budget, a parabola of loss against
log N; its minimum gives N_opt(C); power laws N_opt ∝ C^a and D_opt ∝ C^b are fitted to the minima.

numpy is imported inside the functions that need it (the CLI must start without it).
"""

from __future__ import annotations

from typing import Any, Sequence

from llmplan.records import record


@record
class IsoflopWarning:
    """One warning of the IsoFLOP fit. About one budget: `subject` names it ('1e+21 FLOPs') and `what`
    says what is wrong in words shared by every budget with the same problem, so that a caller can
    count the budgets per kind; `skipped` when the budget gave no minimum. About the whole fit:
    `subject` is None. `message` is the whole sentence."""

    subject: str | None
    what: str
    message: str
    skipped: bool = False


def _budget_warning(budget: float, what: str, message: str | None = None, skipped: bool = False) -> IsoflopWarning:
    subject = f"{budget:.3g} FLOPs"
    return IsoflopWarning(subject, what, message or f"budget {subject}: {what}", skipped)


@record(frozen=False)
class IsoflopResult:
    minima: list[dict[str, Any]]
    row: dict[str, Any]
    problems: list[IsoflopWarning]

    @property
    def warnings(self) -> list[str]:
        """The warnings as sentences."""
        return [p.message for p in self.problems]


def group_budgets(C: Sequence[float], tolerance: float) -> list[list[int]]:
    """Runs whose FLOPs lie within a factor (1 + tolerance) of their group's smallest, in order of C."""
    order = sorted(range(len(C)), key=lambda i: C[i])
    groups: list[list[int]] = []
    for i in order:
        if groups and C[i] <= C[groups[-1][0]] * (1.0 + tolerance):
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def fit_isoflop(N: Sequence[float], D: Sequence[float], L: Sequence[float], tolerance: float = 0.1) -> IsoflopResult:
    """Approach 2 (Hoffmann et al. 2022 §3.2): per budget a parabola L(log N); its minimum is N_opt(C);
    then least squares on log N_opt = log k_N + a log C and log D_opt = log k_D + b log C."""
    import numpy as np

    N, D, L = (np.asarray(v, float) for v in (N, D, L))
    C = 6.0 * N * D  # C ≈ 6ND
    warnings: list[IsoflopWarning] = []
    minima: list[dict[str, Any]] = []
    for group in group_budgets(C.tolist(), tolerance):
        g = np.asarray(group)
        budget = float(np.exp(np.mean(np.log(C[g]))))
        if g.size < 3:
            warnings.append(_budget_warning(budget, "fewer than 3 runs (a parabola needs 3): skipped",
                                            f"budget {budget:.3g} FLOPs has {g.size} run(s); a parabola needs 3 or more: skipped", skipped=True))
            continue
        x = np.log(N[g])
        if np.ptp(x) <= 0:
            warnings.append(_budget_warning(budget, "one model size only: skipped", f"budget {budget:.3g} FLOPs has one model size only: skipped", skipped=True))
            continue
        c2, c1, c0 = np.polyfit(x, L[g], 2)  # L ≈ c2 (log N)² + c1 log N + c0
        if not c2 > 0:
            warnings.append(_budget_warning(budget, "the loss does not curve upward in log N (no minimum): skipped", skipped=True))
            continue
        x_opt = -c1 / (2 * c2)
        edge = bool(x_opt <= x.min() or x_opt >= x.max() or np.argmin(L[g]) in (np.argmin(x), np.argmax(x)))
        if edge:
            warnings.append(_budget_warning(budget, "the minimum is at the edge of the sampled sizes, so it is left out of the power laws; train smaller and larger models there"))
        n_opt = float(np.exp(x_opt))
        minima.append({
            "flops": budget,
            "runs": int(g.size),
            "optimal_params": n_opt,
            "optimal_tokens": budget / (6.0 * n_opt),
            "optimal_loss": float(c0 - c1 * c1 / (4 * c2)),
            "edge": edge,
            "used": not edge,  # an edge minimum is a bound, not a minimum: left out of the power laws
        })
    used = [m for m in minima if m["used"]]
    # Count what the fit used: the runs of the budgets whose minima enter the power laws.
    row: dict[str, Any] = {"method": "isoflop", "budgets": len(used), "runs": int(sum(m["runs"] for m in used)), "runs_given": int(len(N)), "edge_budgets": len(minima) - len(used)}
    if len(used) < 2:
        whole = f"{len(used)} usable budget(s) (3 or more runs and an interior minimum); the power laws need at least 2 (3 or more to judge the fit)"
        warnings.append(IsoflopWarning(None, whole, whole))
        row.update({"a": float("nan"), "b": float("nan"), "n_coef": float("nan"), "d_coef": float("nan")})
        return IsoflopResult(minima, row, warnings)
    logC = np.log([m["flops"] for m in used])
    a, log_kN = np.polyfit(logC, np.log([m["optimal_params"] for m in used]), 1)  # N_opt = k_N C^a
    b, log_kD = np.polyfit(logC, np.log([m["optimal_tokens"] for m in used]), 1)  # D_opt = k_D C^b
    row.update({"a": float(a), "b": float(b), "n_coef": float(np.exp(log_kN)), "d_coef": float(np.exp(log_kD))})
    return IsoflopResult(minima, row, warnings)
