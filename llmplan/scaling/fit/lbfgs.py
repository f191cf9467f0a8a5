"""The optimiser of the parametric fit: a batched L-BFGS that takes many starts to their local minima
at once, and the initialisation grid those starts come from (Hoffmann et al. 2022, App. D.2).

numpy is imported inside the functions that need it (the CLI must start without it).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

from llmplan.errors import InputError, cut

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

# The largest start a grid may hold: beyond these, exp(a - alpha log N) overflows a float (e^709) for
# runs of up to 1e15 parameters or tokens (100 + 10 x ln 1e15 = 445), and no published fit is near
# them (Hoffmann et al. 2022: a, b <= 25, alpha, beta <= 2).
START_BOUNDS = {"a": 100.0, "b": 100.0, "e": 100.0, "alpha": 10.0, "beta": 10.0}

MAX_MOVE = 2.0  # largest change of any parameter in one L-BFGS step (a, b, e are logs; α, β exponents)


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
        bound = START_BOUNDS[name]
        if not all(-bound <= v <= bound for v in grid[name]):
            raise InputError(f"--grid {name}={cut(values)!r} is outside the starts a fit can take: a, b, e (the natural logs of "
                             f"A, B, E) within +-{START_BOUNDS['a']:g}, alpha and beta within +-{START_BOUNDS['alpha']:g} "
                             "(the paper's grid: a, b 0..25, e -1..1, alpha, beta 0..2)")
    if grid_size(grid) > 200_000:
        raise InputError(f"--grid has {grid_size(grid)} starts; at most 200000")
    return grid


def grid_starts(grid: dict[str, Sequence[float]]) -> Any:
    """All starts of the grid, shape (S, 5) in PARAMS order."""
    import numpy as np

    axes = [np.asarray(grid[name], dtype=float) for name in PARAMS]
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1)


# ----------------------------------------------------------------------------- batched L-BFGS

def batched_lbfgs(
    fg: Callable[[Any, Any], tuple[Any, Any]],
    x0: Any,
    *,
    memory: int = 10,
    max_iter: int = 1000,
    gtol: float = 1e-9,
    ftol: float = 1e-15,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Any, Any, Any, Any]:
    """Minimise many independent problems at once with L-BFGS (two-loop recursion, Armijo backtracking).

    fg(x, idx) -> (f, g) evaluates the problems `idx` (indices into the batch) at x (len(idx), d).
    Returns x, f, g (final) and the iteration count of each problem. A problem stops when its largest
    gradient component is ≤ gtol, when its objective stops falling (relative change ≤ ftol for 5
    iterations), or when a line search fails. progress(done, S), if given, is called after each
    iteration with the number of problems that have stopped.
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
        if progress is not None:
            progress(S - idx.size, S)
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
