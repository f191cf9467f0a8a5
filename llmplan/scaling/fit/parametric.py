"""Fitting scaling laws to a user's training runs.

Approach 3 (parametric), as Hoffmann et al. 2022 (App. D.2) and the Epoch replication (Besiroglu et
al. 2024, data_analysis.ipynb) fit it:

    log L̂_i = LSE(a − α·log N_i, b − β·log D_i, e),   A = eᵃ, B = eᵇ, E = eᵉ
    objective = Σ_i Huber_δ(LSE(...) − log L_i),        δ = 1e-3   (the SUM, not the mean)

minimised by L-BFGS from every start of an initialisation grid (4500 starts by default). Here the
objective and its analytic gradient are evaluated for all starts and all runs at once (numpy arrays
of shape starts × runs), a batched L-BFGS takes every start to its local minimum, and the best few
distinct minima are polished with scipy's L-BFGS-B at tight tolerances. No start is skipped.

Approach 2 (IsoFLOP): per compute budget, a parabola of loss against log N; its minimum gives
N_opt(C); power laws N_opt ∝ C^a and D_opt ∝ C^b are fitted to the minima.

numpy and scipy are imported inside the functions that need them (the CLI must start without them).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from llmplan.errors import InputError, WorkError, cut

# Parameter order used everywhere in this module (the Epoch notebook's order).
PARAMS = ("a", "b", "e", "alpha", "beta")

# Hoffmann et al. 2022 App. D.2 initialisation grid (also the Epoch notebook's): 5·5·5·6·6 = 4500.
DEFAULT_GRID: dict[str, tuple[float, ...]] = {
    "alpha": (0.0, 0.5, 1.0, 1.5, 2.0),
    "beta": (0.0, 0.5, 1.0, 1.5, 2.0),
    "e": (-1.0, -0.5, 0.0, 0.5, 1.0),
    "a": (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
    "b": (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
}

DEFAULT_DELTA = 1e-3  # Hoffmann et al. 2022 App. D.2: Huber δ = 1e-3
# A fit counts as converged when the largest gradient component, relative to the gradient's scale
# (δ · Σ_i (1 + |log N_i| + |log D_i|), the largest it could be), is below this.
CONVERGED_RTOL = 1e-7
MAX_MOVE = 2.0  # largest change of any parameter in one L-BFGS step (a, b, e are logs; α, β exponents)
OTHER_BASINS = 4  # distinct other minima kept as bootstrap warm starts
BATCH_RTOL = 1e-5  # the batched stage stops each start at this relative gradient; polishing goes further
CHUNK_ELEMENTS = 250_000  # starts × runs per batch: arrays that stay in cache (measured: 2x faster than one batch)
BUDGETS = (1e21, 1e23, 1e25)  # FLOPs at which the fit's tokens per parameter are reported


# ----------------------------------------------------------------------------- the grid

MAX_GRID_VALUES = 1000  # values per parameter of --grid


def grid_size(grid: dict[str, Sequence[float]]) -> int:
    return math.prod(len(grid[name]) for name in PARAMS)


def parse_grid(spec: str | None) -> dict[str, tuple[float, ...]]:
    """`alpha=0:2:0.5,beta=0.1|0.3,e=0` -> the grid (unnamed parameters keep the paper's values).

    Each entry is NAME=START:STOP:STEP (inclusive), NAME=V1|V2|..., or NAME=V.
    """
    grid = dict(DEFAULT_GRID)
    if spec is None or not spec.strip():
        return grid
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, values = part.partition("=")
        name = name.strip()
        if not sep or name not in PARAMS:
            raise InputError(
                f"--grid entry {cut(part)!r} is not NAME=VALUES with NAME one of {', '.join(PARAMS)}; "
                "e.g. --grid 'alpha=0:2:0.5,e=-1|0|1'"
            )
        values = values.strip()
        try:
            if ":" in values:
                pieces = [float(p) for p in values.split(":")]
                if len(pieces) != 3 or pieces[2] <= 0 or pieces[1] < pieces[0]:
                    raise ValueError
                start, stop, step = pieces
                if not all(math.isfinite(p) for p in pieces):
                    raise ValueError
                span = (stop - start) / step
                if not span <= MAX_GRID_VALUES:  # also catches an overflow to inf (0:1e300:1e-300)
                    raise InputError(f"--grid {name}={cut(values)} gives {'more than 1e308' if not math.isfinite(span) else f'{span:.3g}'} values; at most {MAX_GRID_VALUES} per parameter")
                count = int(math.floor(span + 1e-9)) + 1
                grid[name] = tuple(round(start + i * step, 12) for i in range(count))
            else:
                grid[name] = tuple(float(v) for v in values.split("|"))
        except ValueError:
            raise InputError(
                f"--grid {name}={cut(values)!r} is not START:STOP:STEP (STOP >= START, STEP > 0), "
                "V1|V2|... or one number"
            ) from None
        if not all(math.isfinite(v) for v in grid[name]):
            raise InputError(f"--grid {name}={cut(values)!r} holds a non-finite value")
    if grid_size(grid) > 200_000:
        raise InputError(f"--grid has {grid_size(grid)} starts; at most 200000")
    return grid


def grid_starts(grid: dict[str, Sequence[float]]) -> Any:
    """All starts of the grid, shape (S, 5) in PARAMS order."""
    import numpy as np

    axes = [np.asarray(grid[name], dtype=float) for name in PARAMS]
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1)


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


# ----------------------------------------------------------------------------- batched L-BFGS

def batched_lbfgs(
    fg: Callable[[Any, Any], tuple[Any, Any]],
    x0: Any,
    *,
    memory: int = 10,
    max_iter: int = 1000,
    gtol: float = 1e-9,
    ftol: float = 1e-15,
) -> tuple[Any, Any, Any, Any]:
    """Minimise many independent problems at once with L-BFGS (two-loop recursion, Armijo backtracking).

    fg(x, idx) -> (f, g) evaluates the problems `idx` (indices into the batch) at x (len(idx), d).
    Returns x, f, g (final) and the iteration count of each problem. A problem stops when its largest
    gradient component is ≤ gtol, when its objective stops falling (relative change ≤ ftol for 5
    iterations), or when a line search fails.
    """
    import numpy as np

    x = np.array(x0, dtype=float)
    S, d = x.shape
    f, g = fg(x, np.arange(S))
    s_hist = np.zeros((S, memory, d))
    y_hist = np.zeros((S, memory, d))
    rho = np.zeros((S, memory))
    gamma = np.full(S, 0.0)
    iters = np.zeros(S, dtype=int)
    stall = np.zeros(S, dtype=int)
    active = np.isfinite(f) & (np.abs(g).max(axis=1) > gtol)
    for it in range(max_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        slot = it % memory
        order = [(slot - 1 - k) % memory for k in range(memory)]  # newest first
        q = g[idx].copy()
        sh, yh, rh = s_hist[idx], y_hist[idx], rho[idx]  # gathered once per iteration
        al = np.zeros((idx.size, memory))
        for k in order:
            al[:, k] = rh[:, k] * np.einsum("ij,ij->i", sh[:, k], q)
            q -= al[:, k : k + 1] * yh[:, k]
        gam = gamma[idx]
        first = gam <= 0
        # First step (no curvature yet): a step of length 0.1 in the steepest direction.
        gam = np.where(first, 0.1 / np.maximum(np.linalg.norm(g[idx], axis=1), 1e-300), gam)
        r = q * gam[:, None]
        for k in reversed(order):
            be = rh[:, k] * np.einsum("ij,ij->i", yh[:, k], r)
            r += sh[:, k] * (al[:, k] - be)[:, None]
        direction = -r
        slope = np.einsum("ij,ij->i", direction, g[idx])
        bad = ~(slope < 0) | ~np.isfinite(slope)
        if bad.any():  # not a descent direction: forget the memory, go downhill
            rho[idx[bad]] = 0.0
            gamma[idx[bad]] = 0.0
            gn = np.linalg.norm(g[idx[bad]], axis=1)
            direction[bad] = -g[idx[bad]] * (0.1 / np.maximum(gn, 1e-300))[:, None]
            slope[bad] = np.einsum("ij,ij->i", direction[bad], g[idx[bad]])
        # First trial step: 1 (the L-BFGS step), but no parameter moves more than MAX_MOVE at once.
        step = np.minimum(1.0, MAX_MOVE / np.maximum(np.abs(direction).max(axis=1), 1e-300))
        x_new = np.empty((idx.size, d))
        f_new = np.empty(idx.size)
        g_new = np.empty((idx.size, d))
        pending = np.arange(idx.size)
        for _ in range(40):
            xt = x[idx[pending]] + step[pending, None] * direction[pending]
            ft, gt = fg(xt, idx[pending])
            f0, t, sl = f[idx[pending]], step[pending], slope[pending]
            ok = np.isfinite(ft) & (ft <= f0 + 1e-4 * t * sl)
            done = pending[ok]
            x_new[done], f_new[done], g_new[done] = xt[ok], ft[ok], gt[ok]
            # Backtrack to the minimum of the quadratic through f0, slope and f(t), kept in [0.1t, 0.5t].
            with np.errstate(all="ignore"):
                t_q = -sl * t * t / (2.0 * (ft - f0 - sl * t))
            t_q = np.where(np.isfinite(t_q), t_q, 0.1 * t)
            step[pending] = np.clip(t_q, 0.1 * t, 0.5 * t)
            pending = pending[~ok]
            if pending.size == 0:
                break
        failed = np.zeros(idx.size, dtype=bool)
        failed[pending] = True
        moved = ~failed
        mi = idx[moved]
        sv = x_new[moved] - x[mi]
        yv = g_new[moved] - g[mi]
        sy = np.einsum("ij,ij->i", sv, yv)
        yy = np.einsum("ij,ij->i", yv, yv)
        good = (sy > 1e-12 * np.linalg.norm(sv, axis=1) * np.sqrt(yy)) & (yy > 0)
        gi = mi[good]
        s_hist[gi, slot] = sv[good]
        y_hist[gi, slot] = yv[good]
        rho[gi, slot] = 1.0 / sy[good]
        gamma[gi] = sy[good] / yy[good]
        rho[mi[~good], slot] = 0.0
        rel = (f[mi] - f_new[moved]) / np.maximum(np.abs(f[mi]), 1e-300)
        stall[mi] = np.where(rel <= ftol, stall[mi] + 1, 0)
        x[mi], f[mi], g[mi] = x_new[moved], f_new[moved], g_new[moved]
        iters[idx] += 1
        active[idx[failed]] = False
        active[mi] = (np.abs(g[mi]).max(axis=1) > gtol) & (stall[mi] < 5)
    return x, f, g, iters


# ----------------------------------------------------------------------------- Approach 3

@dataclass
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
) -> ParametricFit:
    """Approach 3: minimise Σ Huber_δ(LSE − log L) from every start of the grid (see module doc)."""
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
    x, f, _g, _it = batched_lbfgs(fg, x0, gtol=BATCH_RTOL * scale, max_iter=1000)
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


# ----------------------------------------------------------------------------- bootstrap

@dataclass
class Bootstrap:
    draws: Any  # (K, 5) thetas
    objectives: Any
    converged: Any  # (K,) bool
    K: int
    seed: int | None


def resample_weights(n: int, K: int, seed: int | None) -> Any:
    """K resamples of n runs with replacement, as multiplicity counts (K, n); same seed, same draws."""
    import numpy as np

    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(K, n))
    W = np.zeros((K, n))
    np.add.at(W, (np.repeat(np.arange(K), n), idx.ravel()), 1.0)
    return W


def _bootstrap_chunk(args: tuple) -> tuple[Any, Any, Any]:
    """Refit a block of resamples at once: each from the full-data optimum and the fit's other minima."""
    import numpy as np

    logN, logD, logL, delta, W, starts = args
    K, S = W.shape[0], starts.shape[0]
    Wr = np.repeat(W, S, axis=0)  # resample k occupies rows k*S .. k*S+S-1
    x0 = np.tile(starts, (K, 1))
    scales = delta * (Wr * (1.0 + np.abs(logN) + np.abs(logD))).sum(axis=1)

    def fg(x: Any, idx: Any) -> tuple[Any, Any]:
        return objective_and_gradient(x, logN, logD, logL, delta, Wr[idx])

    x, f, g, _ = batched_lbfgs(fg, x0, gtol=CONVERGED_RTOL * 0.1 * float(scales.min()), max_iter=3000)
    f = np.where(np.isfinite(f), f, np.inf).reshape(K, S)
    best = np.argmin(f, axis=1)
    rows = np.arange(K) * S + best
    gmax = np.abs(g[rows]).max(axis=1)
    return x[rows], f[np.arange(K), best], gmax <= CONVERGED_RTOL * scales[rows]


def _ignore_interrupts() -> None:
    """Bootstrap workers ignore Ctrl-C: the parent stops them (no traceback from each worker)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _stop_pool(pool: Any) -> None:
    """Cancel what has not started and terminate the running workers at once."""
    processes = list(getattr(pool, "_processes", {}).values())  # no public API to kill a pool's workers
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        try:
            process.terminate()
        except (OSError, AttributeError):
            pass
    for process in processes:
        try:
            process.join(timeout=1)
        except (OSError, AttributeError, AssertionError):
            pass


def bootstrap_parametric(
    N: Sequence[float], D: Sequence[float], L: Sequence[float], fit: ParametricFit, K: int, seed: int | None,
    *, jobs: int = 1, progress: Callable[[int], None] | None = None, extra_starts: int = 4, chunk: int = 25,
) -> Bootstrap:
    """Resample runs with replacement K times and refit each resample (see `_bootstrap_chunk`).

    Each refit starts from the full-data optimum and from the best end points of up to `extra_starts`
    other basins the full grid found (each at least 0.01 away in some parameter), all resamples
    batched together; `progress(n)` is called as blocks finish.
    """
    import numpy as np

    logN, logD, logL = _arrays(N, D, L)
    W = resample_weights(len(logN), K, seed)
    starts = np.asarray(fit.local_minima[: 1 + extra_starts] or [fit.theta], float)
    blocks = [(logN, logD, logL, fit.delta, W[lo : lo + chunk], starts) for lo in range(0, K, chunk)]
    results: list[Any] = [None] * len(blocks)
    if jobs > 1 and len(blocks) > 1:
        from concurrent.futures import ProcessPoolExecutor, as_completed

        pool = ProcessPoolExecutor(max_workers=min(jobs, len(blocks), os.cpu_count() or 1), initializer=_ignore_interrupts)
        try:
            futures = {pool.submit(_bootstrap_chunk, b): i for i, b in enumerate(blocks)}
            for future in as_completed(futures):
                i = futures[future]
                results[i] = future.result()
                if progress:
                    progress(blocks[i][4].shape[0])
        except BaseException:  # Ctrl-C (or any failure): stop the workers now, not after their blocks
            _stop_pool(pool)
            raise
        pool.shutdown(wait=True)
    else:
        for i, block in enumerate(blocks):
            results[i] = _bootstrap_chunk(block)
            if progress:
                progress(block[4].shape[0])
    draws = np.concatenate([r[0] for r in results])
    objectives = np.concatenate([r[1] for r in results])
    converged = np.concatenate([r[2] for r in results])
    return Bootstrap(draws, objectives, converged, K, seed)


def bootstrap_summary(boot: Bootstrap, budgets: Sequence[float] = BUDGETS, level: float = 0.95) -> dict[str, float]:
    """`<name>_se`, `<name>_lo`, `<name>_hi` for E, A, B, alpha, beta, a, b, G and tokens per parameter.

    SE = standard deviation of the draws; interval = percentiles (2.5, 97.5) (the Epoch notebook's
    percentile bootstrap).
    """
    import numpy as np

    t = boot.draws
    E, A, B, alpha, beta = np.exp(t[:, 2]), np.exp(t[:, 0]), np.exp(t[:, 1]), t[:, 3], t[:, 4]
    values = {"E": E, "A": A, "B": B, "alpha": alpha, "beta": beta}
    with np.errstate(all="ignore"):
        values.update(derived(E, A, B, alpha, beta, budgets))
    tail = (1.0 - level) / 2 * 100
    out: dict[str, float] = {}
    for name, v in values.items():
        v = np.asarray(v, float)
        v = v[np.isfinite(v)]
        out[f"{name}_se"] = float(np.std(v, ddof=1)) if v.size > 1 else float("nan")
        out[f"{name}_lo"] = float(np.percentile(v, tail)) if v.size else float("nan")
        out[f"{name}_hi"] = float(np.percentile(v, 100 - tail)) if v.size else float("nan")
    out["bootstrap"] = boot.K
    out["bootstrap_converged"] = int(np.sum(boot.converged))
    return out


# ----------------------------------------------------------------------------- Approach 2 (IsoFLOP)

@dataclass
class IsoflopResult:
    minima: list[dict[str, Any]]
    row: dict[str, Any]
    warnings: list[str]


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
    warnings: list[str] = []
    minima: list[dict[str, Any]] = []
    for group in group_budgets(C.tolist(), tolerance):
        g = np.asarray(group)
        budget = float(np.exp(np.mean(np.log(C[g]))))
        if g.size < 3:
            warnings.append(f"budget {budget:.3g} FLOPs has {g.size} run(s); a parabola needs 3 or more: skipped")
            continue
        x = np.log(N[g])
        if np.ptp(x) <= 0:
            warnings.append(f"budget {budget:.3g} FLOPs has one model size only: skipped")
            continue
        c2, c1, c0 = np.polyfit(x, L[g], 2)  # L ≈ c2 (log N)² + c1 log N + c0
        if not c2 > 0:
            warnings.append(f"budget {budget:.3g} FLOPs: the loss does not curve upward in log N (no minimum): skipped")
            continue
        x_opt = -c1 / (2 * c2)
        edge = bool(x_opt <= x.min() or x_opt >= x.max() or np.argmin(L[g]) in (np.argmin(x), np.argmax(x)))
        if edge:
            warnings.append(f"budget {budget:.3g} FLOPs: the minimum is at the edge of the sampled sizes, so it is left out of the power laws; train smaller and larger models there")
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
        warnings.append(f"{len(used)} usable budget(s) (3 or more runs and an interior minimum); the power laws need at least 2 (3 or more to judge the fit)")
        row.update({"a": float("nan"), "b": float("nan"), "n_coef": float("nan"), "d_coef": float("nan")})
        return IsoflopResult(minima, row, warnings)
    logC = np.log([m["flops"] for m in used])
    a, log_kN = np.polyfit(logC, np.log([m["optimal_params"] for m in used]), 1)  # N_opt = k_N C^a
    b, log_kD = np.polyfit(logC, np.log([m["optimal_tokens"] for m in used]), 1)  # D_opt = k_D C^b
    row.update({"a": float(a), "b": float(b), "n_coef": float(np.exp(log_kN)), "d_coef": float(np.exp(log_kD))})
    return IsoflopResult(minima, row, warnings)


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


def write_whole(path: str, text: str, force: bool = False) -> None:
    """Write text to path whole or not at all (llmplan.io.files.write_whole)."""
    from llmplan.io.files import write_whole as write

    write(path, text, force=force)
