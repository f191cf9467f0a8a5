"""Inference-aware planning (Sardana, Portes, Doubov, Frankle 2024, "Beyond Chinchilla-Optimal:
Accounting for Inference in Language Model Scaling Laws", arXiv:2401.00448, ICML 2024).

A model that will serve D_inf tokens should minimise training plus inference compute at the loss
it must reach, not training compute alone (paper §2, Eq. 2):

    N*, D_tr* = argmin over {N, D_tr : L(N, D_tr) = l} of 6 N D_tr + 2 N D_inf

with the Chinchilla form L = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022 Approach 3). Along the
iso-loss curve D_tr(N) = (B / (l - E - A/N^alpha))^(1/beta), and the stationarity condition

    g(N) = 6 D_tr (1 - (alpha/beta) x) + 2 D_inf = 0,   x = (A/N^alpha) / (B/D_tr^beta)

has exactly one root below the Chinchilla-optimal size (where x = beta/alpha and g = 2 D_inf >= 0;
g -> -infinity as N falls to the size that reaches l only with infinite data, and g increases in
between). The paper finds it by Newton's method; here a bracketed Brent root find in log N
(scipy.optimize.brentq) does the same job without needing a starting guess.

numpy and scipy are imported inside the solver only.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from llmplan.errors import InputError


def iso_loss_tokens(N: float, l: float, E: float, A: float, B: float, alpha: float, beta: float) -> float:
    """D_tr with L(N, D_tr) = l: (B / (l - E - A/N^alpha))^(1/beta) (Hoffmann Eq. 2 solved for D)."""
    room = l - E - A / N**alpha
    return (B / room) ** (1.0 / beta) if room > 0 else math.inf


def min_params_for_loss(l: float, E: float, A: float, alpha: float) -> float:
    """The size that reaches loss l only with infinite data: (A / (l - E))^(1/alpha)."""
    return (A / (l - E)) ** (1.0 / alpha)


def total_flops(N: float, D_tr: float, D_inf: float) -> float:
    """Training plus inference FLOPs: 6 N D_tr + 2 N D_inf (Sardana et al. 2024 Eq. 2)."""
    return 6.0 * N * D_tr + 2.0 * N * D_inf


def chinchilla_point_for_loss(l: float, E: float, A: float, B: float, alpha: float, beta: float) -> tuple[float, float]:
    """The inference-blind (Chinchilla) optimum reaching loss l: on it alpha A/N^alpha = beta B/D^beta
    (Hoffmann Eq. 4), so A/N^alpha = (l - E) beta/(alpha+beta)."""
    model_term = (l - E) * beta / (alpha + beta)
    N = (A / model_term) ** (1.0 / alpha)
    return N, iso_loss_tokens(N, l, E, A, B, alpha, beta)


def inference_optimal(l: float, D_inf: float, E: float, A: float, B: float, alpha: float, beta: float) -> tuple[float, float]:
    """(N*, D_tr*) minimising 6 N D_tr + 2 N D_inf subject to L(N, D_tr) = l (Sardana et al. 2024 Eq. 2)."""
    if not l > E:
        raise InputError(f"target loss {l:g} is at or below the irreducible loss E = {E:g}; ask for more than {E:g}")
    if not (D_inf >= 0 and math.isfinite(D_inf)):
        raise InputError(f"inference tokens must be a non-negative, finite count, not {D_inf!r}")
    N_chin, D_chin = chinchilla_point_for_loss(l, E, A, B, alpha, beta)
    if D_inf == 0:
        return N_chin, D_chin
    from scipy.optimize import brentq

    ratio = alpha / beta

    def g(logN: float) -> float:
        # (1/(2 N)) d/dN-scaled stationarity condition, divided by D_inf to keep it O(1).
        N = math.exp(logN)
        model_term = A / N**alpha
        data_term = l - E - model_term
        if data_term <= 0:
            return -math.inf
        D = (B / data_term) ** (1.0 / beta)
        return (3.0 * D * (1.0 - ratio * model_term / data_term) + D_inf) / D_inf

    hi = math.log(N_chin)
    lo_limit = math.log(min_params_for_loss(l, E, A, alpha))
    # Walk down from the Chinchilla size towards the infinite-data limit until g changes sign.
    lo = hi
    step = 0.5
    while True:
        lo = max(lo - step, lo_limit + 1e-12)
        value = g(lo)
        if value < 0 or lo <= lo_limit + 1e-12:
            break
        step *= 2
    if not g(lo) < 0:  # g -> -inf at the limit, so only floating-point resolution can stop the walk
        raise InputError(
            f"no inference-optimal size for loss {l:g} and {D_inf:.3g} inference tokens within floating-point resolution; give values nearer real training runs"
        )
    logN = brentq(g, lo, hi, xtol=1e-13, rtol=1e-14, maxiter=500)
    N = math.exp(logN)
    return N, iso_loss_tokens(N, l, E, A, B, alpha, beta)


def inference_row(law: Any, l: float, D_inf: float) -> dict[str, Any]:
    """One row for `llmplan optimal --target-loss L --inference-tokens T` under a Chinchilla-form Law:
    the inference-optimal model and the saving against the inference-blind optimum at the same loss."""
    from llmplan.laws import PF_DAY

    if getattr(law, "form", None) != "chinchilla":
        raise InputError(f"--inference-tokens needs a law of the Chinchilla form (E + A/N^alpha + B/D^beta), not {law.id!r}; use chinchilla or epoch-2024")
    c = law.constants
    E, A, B, alpha, beta = c["E"], c["A"], c["B"], c["alpha"], c["beta"]
    N, D = inference_optimal(l, D_inf, E, A, B, alpha, beta)
    N0, D0 = chinchilla_point_for_loss(l, E, A, B, alpha, beta)
    total = total_flops(N, D, D_inf)
    total0 = total_flops(N0, D0, D_inf)
    return {
        "law": law.id,
        "loss": l,
        "params": N,
        "tokens": D,
        "tokens_per_param": D / N,
        "flops": 6.0 * N * D,  # training compute, as in every other planning row; the total is total_flops
        "inference_tokens": D_inf,
        "train_flops": 6.0 * N * D,
        "inference_flops": 2.0 * N * D_inf,
        "total_flops": total,
        "pf_days": 6.0 * N * D / PF_DAY,
        "chinchilla_params": N0,
        "chinchilla_tokens": D0,
        "chinchilla_total_flops": total0,
        "saving_flops": total0 - total,
        "saving_fraction": (total0 - total) / total0,
        "params_convention": law.convention,
    }


def solve_inference(
    law: Any,
    inference_tokens: float,
    budgets: Sequence[float] = (),
    params: float | None = None,
    tokens: float | None = None,
    target_loss: float | None = None,
) -> list[dict[str, Any]]:
    """`llmplan optimal --target-loss L --inference-tokens T`: one row (see inference_row)."""
    if target_loss is None or budgets or params is not None or tokens is not None:
        raise InputError("--inference-tokens answers a --target-loss question only: llmplan optimal --target-loss 2.0 --inference-tokens 2T")
    return [inference_row(law, target_loss, inference_tokens)]
