"""Fitting scaling laws to a user's training runs.

Approach 3 (parametric), as Hoffmann et al. 2022 (App. D.2) and the Epoch replication (Besiroglu et
al. 2024, data_analysis.ipynb) fit it:

    log L̂_i = LSE(a − α·log N_i, b − β·log D_i, e),   A = eᵃ, B = eᵇ, E = eᵉ
    objective = Σ_i Huber_δ(LSE(...) − log L_i),        δ = 1e-3   (the SUM, not the mean)

minimised by L-BFGS from every start of an initialisation grid (4500 starts by default). Here the
objective and its analytic gradient are evaluated for all starts and all runs at once (numpy arrays
of shape starts × runs), a batched L-BFGS takes every start to its local minimum, and the best few
distinct minima are polished with scipy's L-BFGS-B at tight tolerances. No start is skipped.
The optimiser and its grid are in llmplan.scaling.fit.lbfgs, the bootstrap in
llmplan.scaling.fit.bootstrap, Approach 2 (IsoFLOP) in llmplan.scaling.fit.isoflop.

numpy and scipy are imported inside the functions that need them (the CLI must start without them).
"""

from __future__ import annotations

import math
import re
from dataclasses import field
from typing import Any, Callable, Sequence

from llmplan.errors import InputError, WorkError
from llmplan.records import record
from llmplan.scaling.fit.lbfgs import DEFAULT_GRID, PARAMS, batched_lbfgs, grid_starts  # noqa: F401 (PARAMS: the order of theta)

DEFAULT_DELTA = 1e-3  # Hoffmann et al. 2022 App. D.2: Huber δ = 1e-3
# A fit counts as converged when the largest gradient component, relative to the gradient's scale
# (δ · Σ_i (1 + |log N_i| + |log D_i|), the largest it could be), is below this.
CONVERGED_RTOL = 1e-7
OTHER_BASINS = 4  # distinct other minima kept as bootstrap warm starts
BATCH_RTOL = 1e-5  # the batched stage stops each start at this relative gradient; polishing goes further
CHUNK_ELEMENTS = 250_000  # starts × runs per batch: arrays that stay in cache (measured: 2x faster than one batch)
BUDGETS = (1e21, 1e23, 1e25)  # FLOPs at which the fit's tokens per parameter are reported


# ----------------------------------------------------------------------------- objective

def huber(r: Any, delta: float) -> Any:
    # Huber loss (Hoffmann et al. 2022 App. D.2): ½r² for |r| ≤ δ, δ(|r| − δ/2) otherwise.
    import numpy as np

    ar = np.abs(r)
    return np.where(ar <= delta, 0.5 * r * r, delta * (ar - 0.5 * delta))


def log_predicted(theta: Any, logN: Any, logD: Any) -> Any:
    # log L̂ = LSE(a − α log N, b − β log D, e)   (Hoffmann et al. 2022 App. D.2, Eq. 10 in logs)
    import numpy as np

    theta = np.atleast_2d(theta)
    a, b, e, alpha, beta = (theta[:, i : i + 1] for i in range(5))
    u1 = a - alpha * logN
    u2 = b - beta * logD
    u3 = np.broadcast_to(e, u1.shape)
    m = np.maximum(np.maximum(u1, u2), u3)
    return m + np.log(np.exp(u1 - m) + np.exp(u2 - m) + np.exp(u3 - m))


def objective_and_gradient(theta: Any, logN: Any, logD: Any, logL: Any, delta: float, weights: Any = None) -> tuple[Any, Any]:
    """Σ_i w_i Huber_δ(LSE_i − log L_i) and its analytic gradient, for a batch of parameter vectors.

    theta: (S, 5) in PARAMS order; logN, logD, logL: (n,); weights: optional (n,) or (S, n) run
    multiplicities (a bootstrap resample). Returns f (S,) and g (S, 5).
    """
    import numpy as np

    a, b, e, alpha, beta = (theta[:, i : i + 1] for i in range(5))
    # In-place arithmetic on (S, n) arrays: this function is where the fit spends its time.
    e1 = np.multiply(alpha, logN)
    np.subtract(a, e1, out=e1)  # u1 = a − α log N
    e2 = np.multiply(beta, logD)
    np.subtract(b, e2, out=e2)  # u2 = b − β log D
    m = np.maximum(e1, e2)
    np.maximum(m, e, out=m)
    e1 -= m
    np.exp(e1, out=e1)
    e2 -= m
    np.exp(e2, out=e2)
    e3 = np.subtract(e, m)
    np.exp(e3, out=e3)
    s = np.add(e1, e2)
    s += e3
    r = np.log(s)
    r += m
    r -= logL  # r = LSE − log L
    h = np.clip(r, -delta, delta, out=m)  # Huber'(r); reuses m's memory
    if weights is not None:
        h *= weights
        hw = np.clip(r, -delta, delta)
        # Σ w·Huber(r) with Huber(r) = h·(r − h/2), h = clip(r): ½r² inside the band, δ(|r| − δ/2) outside
        f = np.einsum("ij,ij->i", h, r) - 0.5 * np.einsum("ij,ij->i", h, hw)
    else:
        f = np.einsum("ij,ij->i", h, r) - 0.5 * np.einsum("ij,ij->i", h, h)
    h /= s
    e1 *= h  # ∂/∂a of each term: the softmax weight of the N term times Huber'
    e2 *= h
    e3 *= h
    grad = np.empty((theta.shape[0], 5))
    grad[:, 0] = e1.sum(axis=1)
    grad[:, 1] = e2.sum(axis=1)
    grad[:, 2] = e3.sum(axis=1)
    grad[:, 3] = -(e1 @ logN)
    grad[:, 4] = -(e2 @ logD)
    return f, grad


def gradient_scale(logN: Any, logD: Any, delta: float, weights: Any = None) -> float:
    """The largest a gradient component could be: δ · Σ_i w_i (1 + |log N_i| + |log D_i|)."""
    import numpy as np

    w = 1.0 if weights is None else weights
    return float(delta * np.sum(w * (1.0 + np.abs(logN) + np.abs(logD))))


# ----------------------------------------------------------------------------- Approach 3

@record(frozen=False)
class ParametricFit:
    """The result of an Approach-3 fit (parameters in PARAMS order in `theta`)."""

    theta: tuple[float, float, float, float, float]
    objective: float
    grad_max: float  # largest |∂objective/∂θ| at the result
    grad_scale: float
    converged: bool
    starts: int
    runs: int
    delta: float
    minima: int = 0  # distinct local minima the grid's starts reached
    polished: int = 0
    local_minima: list = field(default_factory=list)  # the optimum, then the best end points of other basins

    @property
    def E(self) -> float:
        return math.exp(self.theta[2])

    @property
    def A(self) -> float:
        return math.exp(self.theta[0])

    @property
    def B(self) -> float:
        return math.exp(self.theta[1])

    @property
    def alpha(self) -> float:
        return self.theta[3]

    @property
    def beta(self) -> float:
        return self.theta[4]


def _arrays(N: Sequence[float], D: Sequence[float], L: Sequence[float]) -> tuple[Any, Any, Any]:
    import numpy as np

    return np.log(np.asarray(N, float)), np.log(np.asarray(D, float)), np.log(np.asarray(L, float))


def polish(theta: Any, logN: Any, logD: Any, logL: Any, delta: float, weights: Any = None) -> tuple[Any, float, Any]:
    """scipy L-BFGS-B with the analytic gradient and tight tolerances, from one point."""
    import numpy as np
    from scipy.optimize import minimize

    w = None if weights is None else weights[None, :]

    def fun(t: Any) -> tuple[float, Any]:
        f, g = objective_and_gradient(t[None, :], logN, logD, logL, delta, w)
        return float(f[0]), g[0]

    scale = gradient_scale(logN, logD, delta, weights)
    best = np.asarray(theta, float)
    for _ in range(3):  # restart while short of the target: L-BFGS-B may stop on its own criteria
        res = minimize(fun, best, jac=True, method="L-BFGS-B", options={"ftol": 1e-15, "gtol": 1e-13, "maxiter": 5000, "maxcor": 20})
        best = res.x
        f, g = fun(best)
        if np.max(np.abs(g)) <= 1e-2 * CONVERGED_RTOL * scale:
            break
    return best, f, g


# Evaluations of the objective per start of the grid, in the batched stage plus its line searches:
# measured on our runs files (tests/data fit_runs_exact/noisy: 75 and 81; 300 and 1,000 synthetic
# runs: 45 and 37); the upper end, so the estimate errs long.
EVALS_PER_START = 80


def estimate_seconds(runs: int, starts: int, repeat: int = 3) -> tuple[float, float]:
    """(seconds the fit of `runs` runs from `starts` starts is likely to take here, seconds per
    run-start evaluation measured here): a few evaluations of the objective timed on this machine,
    times EVALS_PER_START evaluations of every start over every run. An estimate, not a promise: it
    scales with the runs and the starts, and with the load of the machine."""
    import time

    import numpy as np

    n = max(1, min(runs, 20_000))
    rng = np.random.default_rng(0)
    logN, logD = rng.uniform(16, 23, n), rng.uniform(20, 27, n)
    logL = np.log(1.7 + np.exp(6.0 - 0.34 * logN) + np.exp(6.0 - 0.28 * logD))
    block = max(8, min(64, CHUNK_ELEMENTS // n))
    x = grid_starts(DEFAULT_GRID)[:block]
    best = math.inf
    for _ in range(repeat):
        t = time.perf_counter()
        objective_and_gradient(x, logN, logD, logL, DEFAULT_DELTA)
        best = min(best, time.perf_counter() - t)
    per = best / (block * n)
    return per * runs * starts * EVALS_PER_START, per


def fit_parametric(
    N: Sequence[float],
    D: Sequence[float],
    L: Sequence[float],
    *,
    delta: float = DEFAULT_DELTA,
    grid: dict[str, Sequence[float]] | None = None,
    starts: Any = None,
    weights: Any = None,
    polish_best: int = 5,
    progress: Callable[[int, int], None] | None = None,
) -> ParametricFit:
    """Approach 3: minimise Σ Huber_δ(LSE − log L) from every start of the grid (see module doc).
    progress(done, starts), if given, is called as the starts of the grid stop (the batched stage)."""
    import numpy as np

    logN, logD, logL = _arrays(N, D, L)
    x0 = grid_starts(grid or DEFAULT_GRID) if starts is None else np.atleast_2d(np.asarray(starts, float))
    if len(logN) < 5:
        raise InputError(f"the parametric law has 5 parameters; {len(logN)} runs cannot determine them (give at least 5, better 30 or more)")
    scale = gradient_scale(logN, logD, delta, weights)
    W = None if weights is None else np.asarray(weights, float)

    Wrow = None if W is None else W[None, :]
    # The objective is evaluated in blocks of rows so its (rows × runs) arrays stay in cache
    # (measured: about 2x faster than one big block); the L-BFGS bookkeeping runs once for all starts.
    chunk = max(64, int(CHUNK_ELEMENTS // max(len(logN), 1)))

    def fg(x: Any, idx: Any) -> tuple[Any, Any]:
        if x.shape[0] <= chunk:
            return objective_and_gradient(x, logN, logD, logL, delta, Wrow)
        parts = [objective_and_gradient(x[lo : lo + chunk], logN, logD, logL, delta, Wrow) for lo in range(0, x.shape[0], chunk)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    # The batch takes every start near its local minimum; the best few basins are then polished.
    x, f, _g, _it = batched_lbfgs(fg, x0, gtol=BATCH_RTOL * scale, max_iter=1000, progress=progress)
    f = np.where(np.isfinite(f), f, np.inf)
    order = np.argsort(f, kind="stable")
    finite = [int(i) for i in order if np.isfinite(f[i])]
    if not finite:
        raise WorkError("the fit failed: every start gave a non-finite objective (check the runs for extreme values)")
    # Basins: walking the end points from the lowest objective up, one that differs from every basin
    # kept so far by more than 0.01 in some parameter starts a new basin. The best end point of each
    # of the first few basins is polished (not just the single best end point: two basins may be
    # nearly tied, and the batch stops each start slightly short of its minimum).
    basins: list[int] = []
    for i in finite:
        if all(np.max(np.abs(x[i] - x[j])) > 1e-2 for j in basins):
            basins.append(i)
            if len(basins) >= max(polish_best, 1 + OTHER_BASINS):
                break
    # Polish: the same L-BFGS on these few points at the tight tolerance; scipy's L-BFGS-B (ftol 1e-15)
    # takes over only for a point that is still short of it.
    tight = 1e-2 * CONVERGED_RTOL * scale
    px, pf, pg, _ = batched_lbfgs(fg, x[basins[:polish_best]], gtol=tight, ftol=0.0, max_iter=5000)
    polished = []
    for k in range(px.shape[0]):
        if np.max(np.abs(pg[k])) <= CONVERGED_RTOL * scale:
            polished.append((px[k], float(pf[k]), pg[k]))
        else:
            polished.append(polish(px[k], logN, logD, logL, delta, W))
    polished.sort(key=lambda p: p[1])
    theta, fv, gv = polished[0]
    keys = {tuple(np.round(x[i], 2).tolist()) for i in finite}  # distinct end points, for the record
    candidates = basins[:polish_best]
    rest = [x[i] for i in basins[polish_best:]]
    local_minima = [p[0] for p in polished] + rest
    gmax = float(np.max(np.abs(gv)))
    return ParametricFit(
        theta=tuple(float(t) for t in theta),
        objective=float(fv),
        grad_max=gmax,
        grad_scale=scale,
        converged=bool(gmax <= CONVERGED_RTOL * scale),
        starts=int(x0.shape[0]),
        runs=int(len(logN)),
        delta=delta,
        minima=len(keys),
        polished=len(candidates),
        local_minima=[tuple(float(t) for t in b) for b in local_minima],
    )


# ----------------------------------------------------------------------------- derived quantities

def derived(E: float, A: float, B: float, alpha: float, beta: float, budgets: Sequence[float] = BUDGETS) -> dict[str, float]:
    """a, b, G and the tokens per parameter D_opt/N_opt at each budget (Hoffmann et al. 2022, Eq. 4).

    Eq. 4 needs alpha, beta > 0 (else G is a fractional power of a negative number: complex): for a
    single fit with an exponent <= 0 the derived quantities are None, never complex."""
    from llmplan.scaling.laws import chinchilla_G, chinchilla_exponents, chinchilla_optimal

    if isinstance(alpha, (int, float)) and not (alpha > 0 and beta > 0 and A > 0 and B > 0):
        return {"a": None, "b": None, "G": None, **{ratio_key(C): None for C in budgets}}

    a, b = chinchilla_exponents(alpha, beta)
    out = {"a": a, "b": b, "G": chinchilla_G(A, B, alpha, beta)}
    for C in budgets:
        n_opt, d_opt = chinchilla_optimal(C, A, B, alpha, beta)
        out[ratio_key(C)] = d_opt / n_opt
    return out


def ratio_key(C: float) -> str:
    """tokens_per_param_1e21 for C = 1e21 FLOPs (mantissa kept when it is not 1: 3e23 -> 3e23)."""
    text = f"{C:.3g}".replace("+", "").replace("e0", "e").replace(".", "p")
    return f"tokens_per_param_{text}"


def parametric_row(fit: ParametricFit, budgets: Sequence[float] = BUDGETS) -> dict[str, Any]:
    """The result row: E, A, B, alpha, beta, a, b, G, objective, runs, converged, tokens per parameter."""
    row: dict[str, Any] = {
        "method": "parametric",
        "E": fit.E, "A": fit.A, "B": fit.B, "alpha": fit.alpha, "beta": fit.beta,
    }
    row.update(derived(fit.E, fit.A, fit.B, fit.alpha, fit.beta, budgets))
    row.update({
        "objective": fit.objective,
        "runs": fit.runs,
        "starts": fit.starts,
        "converged": fit.converged,
        "grad_max": fit.grad_max,
        "delta": fit.delta,
    })
    return row


def residuals(theta: Sequence[float], N: Sequence[float], D: Sequence[float], L: Sequence[float]) -> list[float]:
    """Predicted loss E + A/N^α + B/D^β for each run (as exp(LSE), the fit's own form)."""
    import numpy as np

    logN, logD, _ = _arrays(N, D, L)
    return np.exp(log_predicted(np.asarray(theta, float), logN, logD)[0]).tolist()


def residual_rows(theta: Sequence[float], lines: Sequence[int], N: Sequence[float], D: Sequence[float], L: Sequence[float]) -> list[dict[str, Any]]:
    """Each run's observed and predicted loss, and log(observed / predicted) (`fit --residuals`)."""
    return [
        {"line": line, "params": n, "tokens": d, "flops": 6.0 * n * d, "loss": l, "predicted_loss": p,
         "log_residual": math.log(l / p) if l > 0 and p > 0 else None}
        for line, n, d, l, p in zip(lines, N, D, L, residuals(theta, N, D, L))
    ]


# ----------------------------------------------------------------------------- checks and law files

# Below this span (decades) of N or of D, or above this |correlation| of log N and log D, the runs
# cannot tell the size term from the data term: alpha and beta are not identified, only their mix.
MIN_SPAN_DECADES = 0.1
MAX_COLLINEARITY = 0.999


def identifiability_problem(N: Sequence[float], D: Sequence[float]) -> str | None:
    """Why these runs cannot identify the five parameters of L = E + A/N^alpha + B/D^beta, or None."""
    import numpy as np

    logN, logD = np.log(np.asarray(N, float)), np.log(np.asarray(D, float))
    if len(logN) < 5:
        return f"{len(logN)} runs cannot determine 5 parameters (E, A, B, alpha, beta); give at least 5, better 20 or more"
    spanN, spanD = np.ptp(logN) / np.log(10), np.ptp(logD) / np.log(10)
    if spanN < MIN_SPAN_DECADES:
        return f"the model sizes span {spanN:.3f} decades: alpha cannot be told from E; vary N (at least 1 decade is advised)"
    if spanD < MIN_SPAN_DECADES:
        return f"the token counts span {spanD:.3f} decades: beta cannot be told from E; vary D (at least 1 decade is advised)"
    corr = float(np.corrcoef(logN, logD)[0, 1])
    if abs(corr) > MAX_COLLINEARITY:
        return (f"log N and log D are collinear (correlation {corr:.4f}: the same tokens per parameter in every run), "
                "so alpha and beta cannot be told apart; add runs with other tokens-per-parameter ratios")
    return None


def exponent_problem(fit: "ParametricFit") -> str | None:
    """A fitted law no scaling law can be: an exponent or coefficient that is not positive and finite."""
    values = {"E": fit.E, "A": fit.A, "B": fit.B, "alpha": fit.alpha, "beta": fit.beta}
    for name, value in values.items():
        if not math.isfinite(value):
            return f"the fitted {name} is not finite ({value})"
    for name in ("alpha", "beta"):
        if not values[name] > 1e-6:
            return f"the best fit has {name} = {values[name]:.4g}, not positive: the runs do not show the loss falling with {'N' if name == 'alpha' else 'D'}"
    if fit.alpha > 5 or fit.beta > 5:
        return f"the best fit has alpha = {fit.alpha:.4g}, beta = {fit.beta:.4g}, far outside published fits (0.1-1): the runs do not determine them"
    return None


def data_warnings(N: Sequence[float], D: Sequence[float]) -> list[str]:
    """Warnings about runs that cannot pin the five parameters down (few runs, narrow or collinear spans)."""
    import numpy as np

    logN, logD = np.log(np.asarray(N, float)), np.log(np.asarray(D, float))
    out = []
    if len(logN) < 20:
        out.append(f"only {len(logN)} runs for 5 parameters; expect wide uncertainty (use --bootstrap to see it)")
    spanN, spanD = np.ptp(logN) / np.log(10), np.ptp(logD) / np.log(10)
    if spanN < 1.0:
        out.append(f"model sizes span {spanN:.2f} decades; under 1 decade, alpha and beta are poorly separated (ill-conditioned fit)")
    if spanD < 1.0:
        out.append(f"token counts span {spanD:.2f} decades; under 1 decade, alpha and beta are poorly separated (ill-conditioned fit)")
    if len(logN) > 2 and np.std(logN) > 0 and np.std(logD) > 0:
        corr = float(np.corrcoef(logN, logD)[0, 1])
        if abs(corr) > 0.98:
            out.append(f"log N and log D are almost collinear (correlation {corr:.3f}); vary tokens per parameter to separate alpha from beta")
    return out


def law_toml(law_id: str, name: str, fit: ParametricFit, source: str, N: Sequence[float], D: Sequence[float], convention: str = "total") -> str:
    """A one-entry law file (presets/laws.toml schema, form "chinchilla"), numbers at full precision."""
    C = [6.0 * n * d for n, d in zip(N, D)]

    def q(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = [
        f"[{law_id}]" if re.fullmatch(r"[A-Za-z0-9_-]+", law_id) else f"[{q(law_id)}]",
        f"name = {q(name)}",
        'form = "chinchilla"',
        f"E = {fit.E!r}",
        f"A = {fit.A!r}",
        f"B = {fit.B!r}",
        f"alpha = {fit.alpha!r}",
        f"beta = {fit.beta!r}",
        f"convention = {q(convention)}",
        f"source = {q(source)}",
        f"fitted_min_flops = {min(C)!r}",
        f"fitted_max_flops = {max(C)!r}",
        f"fitted_min_params = {float(min(N))!r}",
        f"fitted_max_params = {float(max(N))!r}",
        f"fitted_min_tokens = {float(min(D))!r}",
        f"fitted_max_tokens = {float(max(D))!r}",
        f"runs = {fit.runs}",
        f"objective = {fit.objective!r}",
    ]
    return "\n".join(lines) + "\n"
