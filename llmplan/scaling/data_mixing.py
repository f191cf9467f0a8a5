"""Data mixing laws (Ye et al. 2024, "Data Mixing Laws: Optimizing Data Mixtures by Predicting Language
Modeling Performance", ICLR 2025, arXiv:2403.16952), fitted to the user's own small runs:

    L_i(r_1..r_M) = c_i + k_i exp(sum_j t_ij r_j)                      (paper Eq. 6)

the validation loss on domain i of a model trained on the mixture r (proportions summing to 1), and
the target loss sum_i s_i L_i for a validation set of composition s (paper Eq. 8). The form is the
authors' code's (yegcjs/mixinglaws pipeline/utils.py mixture_law_: exp(log_c) + exp(log_k + r . t)),
c and k kept positive through their logs; the authors fit with a Huber loss (law.py, delta 0.01) from
many starts, as here. Their caveat: the rankings of mixtures vary with model size and tokens, so the
optimum found at small scale can be suboptimal at the target scale. No constants are shipped: the
fitted c, k, t belong to one dataset and one domain split. Since the proportions sum to 1, k and t are
fixed only up to t_ij + delta, k_i exp(-delta): predictions and the optimum are unique, the constants not.
"""

from __future__ import annotations

import math
from typing import Sequence

from llmplan.errors import InputError, WorkError
from llmplan.records import record

CAVEAT = ("Ye et al. 2024: the rankings of mixtures vary with model size and training tokens, so the optimum at the scale "
          "of these runs can be suboptimal at the target scale")


def mixture_loss(r: Sequence[float], c: float, k: float, t: Sequence[float]) -> float:
    """L_i = c_i + k_i exp(sum_j t_ij r_j) (Ye et al. 2024 Eq. 6)."""
    return c + k * math.exp(sum(tj * rj for tj, rj in zip(t, r)))


@record
class MixtureFit:
    domains: list[str]  # training domains (the proportions)
    targets: list[str]  # validation domains (the losses)
    c: list[float]
    k: list[float]
    t: list[list[float]]  # t[i][j]: validation domain i, training domain j
    rmse: list[float]

    def loss(self, r: Sequence[float], weights: Sequence[float]) -> float:
        """sum_i s_i L_i(r) (Ye et al. 2024 Eq. 8)."""
        return sum(s * mixture_loss(r, c, k, t) for s, c, k, t in zip(weights, self.c, self.k, self.t))


def fit_one(R: Sequence[Sequence[float]], y: Sequence[float]) -> tuple[float, float, list[float], float]:
    """(c, k, t, rmse) of one validation domain's losses y over mixtures R (Huber loss, several starts);
    numpy's and scipy's warnings stay inside (a failed fit is an error, not a RuntimeWarning)."""
    import warnings

    import numpy as np

    R_ = np.asarray(R, dtype=float)
    y_ = np.asarray(y, dtype=float)
    M = R_.shape[1]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _fit_one(R_, y_, M)


def _fit_one(R_, y_, M: int) -> tuple[float, float, list[float], float]:
    import numpy as np
    from scipy.optimize import least_squares

    def residual(x):
        return np.exp(x[0]) + np.exp(x[1] + R_ @ x[2:]) - y_

    best = None
    for c0 in (0.5, 0.9):
        for t0 in (-1.0, 0.0, 1.0):
            x0 = np.concatenate([[math.log(max(c0 * y_.min(), 1e-6)), math.log(max(y_.max() - c0 * y_.min(), 1e-6))], [t0] * M])
            try:
                result = least_squares(residual, x0, loss="huber", f_scale=0.01, max_nfev=5000, x_scale="jac")
            except (ValueError, OverflowError, FloatingPointError):
                continue
            if np.all(np.isfinite(result.x)) and (best is None or result.cost < best.cost):
                best = result
    if best is None:
        raise WorkError("the data mixing law did not fit; check that the losses vary with the mixture")
    x = best.x
    rmse = float(np.sqrt(np.mean(residual(x) ** 2)))
    if not math.isfinite(rmse) or abs(x[0]) > 700 or abs(x[1]) > 700:
        raise WorkError("the data mixing law gave no finite constants; check that the losses vary with the mixture")
    return math.exp(x[0]), math.exp(x[1]), [float(v) for v in x[2:]], rmse


MAX_LOSS = 1000.0  # nats per token: a language model's loss is below ~20 (log of its vocabulary at worst)


def check_runs_vary(domains: Sequence[str], targets: Sequence[str], R: Sequence[Sequence[float]], losses: Sequence[Sequence[float]]) -> None:
    """Refuse runs a fit cannot tell apart: the mixtures must vary, and each loss column, every loss in range."""
    if len({tuple(round(v, 12) for v in r) for r in R}) < 2:
        raise InputError("every run has the same mixture; the mixtures (r_<domain> columns) must vary across the runs for a fit")
    for name, y in zip(targets, losses):
        for value in y:
            if not (0 < value < MAX_LOSS and math.isfinite(value)):
                raise InputError(f"loss_{name}: a run's loss is {value:g}; give losses in nats per token, above 0 and below {MAX_LOSS:g}")
        if len(set(y)) < 2:
            raise InputError(f"loss_{name}: every run has the same loss; the losses must vary with the mixture for a fit")


def fit_mixture(domains: Sequence[str], targets: Sequence[str], R: Sequence[Sequence[float]], losses: Sequence[Sequence[float]]) -> MixtureFit:
    """One law per validation domain; losses[i] are validation domain i's losses, one per run."""
    M = len(domains)
    check_runs_vary(domains, targets, R, losses)
    if len(R) < M + 3:
        raise InputError(f"{len(R)} runs cannot fit the mixing law over {M} domains (M + 2 = {M + 2} constants per loss); give at least {M + 3} runs")
    fits = [fit_one(R, y) for y in losses]
    return MixtureFit(list(domains), list(targets), [f[0] for f in fits], [f[1] for f in fits], [f[2] for f in fits], [f[3] for f in fits])


def optimal_mixture(fit: MixtureFit, weights: Sequence[float], bounds: Sequence[tuple[float, float]] | None = None) -> tuple[list[float], float]:
    """The proportions on the simplex (within bounds, default [0, 1] each) minimising sum_i s_i L_i:
    SLSQP from the uniform mixture and from each vertex, the best kept."""
    import warnings

    import numpy as np
    from scipy.optimize import minimize

    M = len(fit.domains)
    bounds = list(bounds) if bounds else [(0.0, 1.0)] * M
    starts = [np.full(M, 1.0 / M)] + [np.eye(M)[j] * 0.9 + 0.1 / M for j in range(M)]
    best = None
    for x0 in starts:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = minimize(lambda r: fit.loss(r, weights), x0, method="SLSQP", bounds=bounds,
                              constraints=[{"type": "eq", "fun": lambda r: float(np.sum(r) - 1.0)}], options={"ftol": 1e-12, "maxiter": 500})
        if result.success and (best is None or result.fun < best.fun):
            best = result
    if best is None:
        raise WorkError("no mixture minimises the fitted law within the bounds; loosen them")
    r = [float(v) if v > 1e-9 else 0.0 for v in best.x]  # SLSQP leaves ~1e-16 where a bound is active
    total = sum(r)
    r = [v / total for v in r]
    return r, fit.loss(r, weights)
