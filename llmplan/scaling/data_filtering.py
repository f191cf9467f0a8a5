"""How hard to filter a raw pool under a compute budget: the cost of filtering, from a fitted law,
and the per-bucket utility decay of Goyal et al. 2024, fitted to the user's own runs.

The cost side has a verified law: keeping a fraction f of a pool of P tokens leaves U = f P unique
tokens, so the compute-optimal token count D needs D / U epochs, and repeated tokens are worth less
(Muennighoff et al. 2023, arXiv:2305.16264, Eq. 3-5, in llmplan.scaling.data_constrained; its fit
covers 7M to 9B parameters and 1 to 500 epochs). The gain side has no fitted law for language
models: published filtering results are measured points (llmplan.scaling.data_priors), shown as
priors and never added to a predicted loss.

Goyal et al. 2024 ("Scaling Laws for Data Filtering", CVPR 2024, arXiv:2404.07177) model a pool's
error as y = a n^b + d, where the utility b of a sample halves every tau epochs:
b_k = b 0.5^(k / tau) at the (k+1)-th pass. Its constants are CLIP-specific; llmplan ships none
and fits (b, tau) per quality bucket from the user's runs. Of the paper's form and the authors'
code (locuslab/scaling_laws_data_filtering, objective.py: a inside the power, d scaled by the
product), llmplan uses the paper's: y = a n_1^b_1 prod_j (n_j / n_(j-1))^b_j + d.
"""

from __future__ import annotations

import math
from typing import Sequence

from llmplan.errors import InputError, WorkError
from llmplan.records import record
from llmplan.scaling.data_constrained import MUENNIGHOFF_2023, DataConstrainedLaw, data_constrained_loss, effective_data, optimal_constrained, optimal_unlimited

# The keep fractions: DCLM-Baseline keeps 1.4% of DCLM-Pool (Li et al. 2024 Fig. 4), 3%,
# FineWeb-Edu keeps 1.3T of 15T = 8.7% (Penedo et al. 2024 dataset card), 20% (DCLM Table 5's
# loosest and RefinedWeb's heuristic rate), and the unfiltered pool.
DEFAULT_KEEP = (0.014, 0.03, 0.087, 0.2, 1.0)
# The repetition cost (share of the tokens' worth lost to repetition) a plan tolerates by default.
DEFAULT_MAX_COST = 0.05
LAW_RANGE = "fitted on 7M-9B params, 1-500 epochs (Muennighoff et al. 2023 Sec. 5)"


def check_keep(f: float) -> float:
    if not (0.0 < f <= 1.0) or not math.isfinite(f):
        raise InputError(f"keep fraction {f:g} is not in (0, 1]; give the share of the pool kept, e.g. --keep 0.03,0.1")
    return f


def repetition_cost(D: float, U: float, law: DataConstrainedLaw = MUENNIGHOFF_2023) -> float:
    """1 - D'/D: the share of D tokens' worth lost because only U are unique (Muennighoff Eq. 3)."""
    return 1.0 - effective_data(D, U, law) / D


def epochs_at_cost(cost: float, law: DataConstrainedLaw = MUENNIGHOFF_2023) -> float:
    """The epochs e at which repetition costs `cost` of the data: 1 - (1 + R*(1 - e^(-(e-1)/R*))) / e = cost.

    The cost rises monotonically with epochs (to 1 - 0 as e grows, since D' saturates at U(1 + R*)),
    so a bracketed root is exact; a cost the law never reaches is infinite epochs."""
    if not (0.0 < cost < 1.0):
        raise InputError(f"--max-cost {cost:g} is not a fraction in (0, 1); e.g. --max-cost 0.05 for 5% of the data's worth")

    def lost(e: float) -> float:
        return repetition_cost(e, 1.0, law) - cost

    hi = 2.0
    while lost(hi) < 0:
        hi *= 2.0
        if hi > 1e12:
            return math.inf
    from scipy.optimize import brentq

    return float(brentq(lost, 1.0, hi, xtol=1e-12))


@record
class FilterPoint:
    keep: float
    unique_tokens: float
    params: float
    tokens: float
    epochs: float
    effective_tokens: float
    repetition_cost: float
    loss: float
    loss_unlimited_data: float
    optimal_params: float
    optimal_tokens: float
    optimal_loss: float


def filter_point(C: float, pool: float, keep: float, tokens: float | None = None, law: DataConstrainedLaw = MUENNIGHOFF_2023) -> FilterPoint:
    """One keep fraction at budget C: the compute-optimal split with unlimited data (or D = tokens),
    the epochs it needs of U = keep x pool, its effective data and loss under the repetition law, and
    the best re-split of C for that U (more parameters, fewer tokens, when data repeats)."""
    check_keep(keep)
    U = keep * pool
    if tokens is None:
        N, D = optimal_unlimited(C, law)
    else:
        D = tokens
        N = C / (6.0 * D)
    N_c, D_c, L_c = optimal_constrained(C, U, law)
    return FilterPoint(
        keep=keep, unique_tokens=U, params=N, tokens=D, epochs=D / U, effective_tokens=effective_data(D, U, law),
        repetition_cost=repetition_cost(D, U, law), loss=data_constrained_loss(N, D, U, law), loss_unlimited_data=law.loss_unlimited(N, D),
        optimal_params=N_c, optimal_tokens=D_c, optimal_loss=L_c,
    )


def min_keep(D: float, pool: float, max_epochs: float) -> float:
    """The smallest keep fraction whose unique tokens reach D in max_epochs: D / (max_epochs x pool)."""
    return min(1.0, D / (max_epochs * pool))


def scoring_gpu_hours(pool: float, hours_per_trillion: float) -> float:
    """GPU-hours to score the whole pool with a classifier at hours_per_trillion per 1e12 tokens
    (FineWeb-Edu: 6,000 H100-hours for 15T, Penedo et al. 2024 Sec. 3)."""
    return pool / 1e12 * hours_per_trillion


# ------------------------------------------------------------------ Goyal et al. 2024, per-bucket utility decay

# n is counted in billions of tokens: a shared a with per-bucket b depends on n's unit (the authors'
# code divides samples by 100,000 for the same reason).
UNIT = 1e9


def decayed_utility(b: float, tau: float, k: int) -> float:
    """b_(k+1) = b 0.5^(k / tau): a sample's utility at its (k+1)-th pass (Goyal et al. 2024 Sec. 3)."""
    return b * 0.5 ** (k / tau)


def goyal_error(n: float, per_epoch: float, a: float, bs: Sequence[float], d: float) -> float:
    """y = a n_1^b_1 prod_(j=2..k) (n_j / n_(j-1))^b_j + d, n_j = min(j S, n) (Goyal et al. 2024 Sec. 3),
    bs[j] the utility at pass j+1 (the last repeats beyond len(bs)); n and S in units of the runs.

    The passes that share the last utility telescope: their factors multiply to (n / n_j)^b_last, so
    the cost is len(bs) steps whatever the number of epochs."""
    if n <= per_epoch:
        return a * n ** bs[0] + d
    log_y = bs[0] * math.log(per_epoch)
    k = 1
    seen = per_epoch
    last = len(bs) - 1
    while seen < n and k < last:
        nxt = min(seen + per_epoch, n)
        log_y += bs[k] * math.log(nxt / seen)
        seen, k = nxt, k + 1
    if seen < n:
        log_y += bs[last] * math.log(n / seen)  # every further pass at the last utility: the product telescopes
    return a * math.exp(log_y) + d


# A pass whose utility has decayed below this share of the first pass's adds nothing a fit can see
# (b 0.5^(k / tau) < 1e-12 b after k > 40 tau passes): the utilities stop there and the rest count as 0,
# so a target of billions of epochs costs at most ~40 tau passes (tau <= 1e4 in the fit).
NEGLIGIBLE_UTILITY = 1e-12


def _passes(n: float, per_epoch: float, taus: Sequence[float]) -> tuple[int, bool]:
    """(passes to list, whether the rest were cut as negligible) for n samples, S = per_epoch per pass."""
    passes = int(math.ceil(n / per_epoch)) if n > per_epoch else 1
    cut = int(math.ceil(max(taus) * math.log2(1.0 / NEGLIGIBLE_UTILITY))) + 1
    return (cut, True) if passes > cut else (passes, False)


def bucket_error(n: float, per_epoch: float, a: float, b: float, tau: float, d: float) -> float:
    """One bucket's error after n samples with S = per_epoch unique ones."""
    passes, cut = _passes(n, per_epoch, [tau])
    return goyal_error(n, per_epoch, a, [decayed_utility(b, tau, k) for k in range(passes)] + ([0.0] if cut else []), d)


def mixture_error(n: float, per_bucket: float, a: float, bs: Sequence[float], taus: Sequence[float], d: float) -> float:
    """The top p equal buckets trained together: S = p x per_bucket per epoch, tau_hat = p tau_i and
    b_eff^(k) = mean_i b_i 0.5^(k / tau_hat_i) (Goyal et al. 2024 mixture theorem; estimate_best_pool.py)."""
    p = len(bs)
    S = p * per_bucket
    passes, cut = _passes(n, S, [p * t for t in taus])
    b_eff = [sum(decayed_utility(b, p * t, k) for b, t in zip(bs, taus)) / p for k in range(passes)]
    return goyal_error(n, S, a, b_eff + ([0.0] if cut else []), d)


@record
class BucketFit:
    buckets: list[str]  # best first, as ranked by the user
    a: float
    d: float
    b: list[float]
    tau: list[float]
    scale: float  # samples are divided by this before the power (a's units)
    rmse: float
    runs: int
    at_bound: tuple[str, ...] = ()  # fitted constants that sit at a bound of the search (not fixed by the runs)


def fit_buckets(bucket: Sequence[str], seen: Sequence[float], per_epoch: Sequence[float], loss: Sequence[float], order: Sequence[str] | None = None) -> BucketFit:
    """Fit a, d (shared) and b, tau per bucket to runs (bucket, tokens seen n, unique tokens S, loss y)
    by least squares on y (scipy.optimize.least_squares, b < 0, tau > 0, a > 0, d >= 0)."""
    import warnings

    import numpy as np
    from scipy.optimize import least_squares

    names = list(order) if order else list(dict.fromkeys(bucket))
    check_runs_vary(seen, per_epoch, loss)
    if len(seen) < 2 * len(names) + 2:
        raise InputError(f"{len(seen)} runs cannot fix {2 * len(names) + 2} constants (b and tau per bucket, a and d shared); give at least that many runs")
    index = {name: i for i, name in enumerate(names)}
    scale = UNIT
    n = [v / scale for v in seen]
    S = [v / scale for v in per_epoch]
    y = np.asarray(loss, dtype=float)
    B = len(names)

    def model(x):
        a, d = math.exp(x[0]), x[1]
        out = []
        for i, name in enumerate(bucket):
            j = index[name]
            out.append(bucket_error(n[i], S[i], a, x[2 + j], math.exp(x[2 + B + j]), d))
        return np.asarray(out)

    x0 = np.concatenate([[math.log(max(y.max() - 0.9 * y.min(), 1e-3)), 0.9 * y.min()], [-0.3] * B, [math.log(3.0)] * B])
    lo = np.concatenate([[-30.0, 0.0], [-5.0] * B, [math.log(0.05)] * B])
    hi = np.concatenate([[30.0, y.min()], [-1e-6] * B, [math.log(1e4)] * B])
    x0 = np.clip(x0, lo + 1e-9, hi - 1e-9)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = least_squares(lambda x: model(x) - y, x0, bounds=(lo, hi), method="trf", x_scale="jac", ftol=1e-12, xtol=1e-12, gtol=1e-12, max_nfev=20000)
        except (ValueError, OverflowError, FloatingPointError, ZeroDivisionError) as error:
            raise WorkError(f"the utility-decay fit failed: {error}") from None
        if not result.success:
            raise WorkError(f"the utility-decay fit did not converge ({result.message}); give more runs per bucket, at several epoch counts")
        x = result.x
        try:
            rmse = float(math.sqrt(np.mean((model(x) - y) ** 2)))
        except (ValueError, OverflowError):
            rmse = math.inf
    if not (np.all(np.isfinite(x)) and math.isfinite(rmse)):
        raise WorkError("the utility-decay fit gave no finite constants; check the runs' losses and token counts")
    labels = ["a", "d"] + [f"b ({name})" for name in names] + [f"tau ({name})" for name in names]
    span = hi - lo
    at_bound = tuple(label for label, v, l, h, s in zip(labels, x, lo, hi, span) if min(v - l, h - v) <= 1e-6 * max(s, 1.0))
    return BucketFit(names, math.exp(x[0]), float(x[1]), [float(v) for v in x[2 : 2 + B]], [math.exp(v) for v in x[2 + B :]], scale, rmse, len(y), at_bound)


MAX_LOSS = 1000.0  # nats per token: a language model's loss is below ~20 (log of its vocabulary at worst)


def check_runs_vary(seen: Sequence[float], per_epoch: Sequence[float], loss: Sequence[float]) -> None:
    """Refuse runs a fit cannot tell apart: the losses and the tokens seen must vary, every value in range."""
    for value in seen:
        if not (value > 0 and math.isfinite(value)):
            raise InputError(f"a run's tokens seen is {value:g}; give positive token counts")
    for value in per_epoch:
        if not (value > 0 and math.isfinite(value)):
            raise InputError(f"a run's unique tokens is {value:g}; give positive token counts")
    for value in loss:
        if not (0 < value < MAX_LOSS and math.isfinite(value)):
            raise InputError(f"a run's loss is {value:g}; give losses in nats per token, above 0 and below {MAX_LOSS:g}")
    if len(set(loss)) < 2:
        raise InputError("every run has the same loss; the losses must vary (runs at several token counts) for a fit")
    if len(set(s / u for s, u in zip(seen, per_epoch))) < 2 or len(set(seen)) < 2:
        raise InputError("every run saw the same tokens; the tokens seen (and epochs) must vary across the runs for a fit")


def best_buckets(fit: BucketFit, target_tokens: float, per_bucket: float) -> list[tuple[int, float, float]]:
    """(p, epochs, predicted error) for the top p = 1..B buckets at target_tokens, each bucket
    per_bucket unique tokens: the p with the least error is how hard to filter (Goyal Sec. 4)."""
    out = []
    for p in range(1, len(fit.buckets) + 1):
        err = mixture_error(target_tokens / fit.scale, per_bucket / fit.scale, fit.a, fit.b[:p], fit.tau[:p], fit.d)
        out.append((p, target_tokens / (p * per_bucket), err))
    return out
