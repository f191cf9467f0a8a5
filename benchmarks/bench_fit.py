"""`llmplan fit` on the Epoch data (240 runs) against the published code's method, in the same run.

Baseline: what the Epoch replication notebook (data_analysis.ipynb, "replicate exactly") does:
scipy.optimize.minimize(method="L-BFGS-B") with default tolerances and finite-difference gradients
(no jac) on the sum of Huber losses, from every one of the 4500 starts of Hoffmann et al.'s grid; a
start counts only if result.success; the lowest objective wins. It takes minutes.

Ours: llmplan.scaling.fit.parametric.fit_parametric (batched L-BFGS over all starts with the analytic gradient, then
polishing the best few minima), then the same plus --bootstrap 1000.

Skipped (one row with a note) when ../shared/data is absent. Set LLMPLAN_BENCH_FIT_BASELINE_EVERY=k
to time the baseline on every k-th start only and extrapolate (the note says so).
"""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "epoch_chinchilla_fig4_svg_extracted.csv"


def load():
    import numpy as np

    with open(DATA, newline="") as handle:
        rows = list(csv.DictReader(handle))
    N = np.array([float(r["Model Size"]) for r in rows])
    C = np.array([float(r["Training FLOP"]) for r in rows])
    L = np.array([float(r["loss"]) for r in rows])
    keep = L < np.sort(L)[-5]  # Epoch: drop the 5 highest-loss runs -> 240
    N, C, L = N[keep], C[keep], L[keep]
    return N, C / (6 * N), L


def baseline(N, D, L, every: int = 1):
    """The notebook's grid search: L-BFGS-B, default tolerances, finite-difference gradients."""
    import numpy as np
    from scipy.optimize import minimize
    from scipy.special import huber, logsumexp

    from llmplan.scaling.fit.lbfgs import DEFAULT_GRID, grid_starts

    logN, logD, logL = np.log(N), np.log(D), np.log(L)

    def objective(p):
        a, b, e, alpha, beta = p
        pred = logsumexp([a - alpha * logN, b - beta * logD, e * np.ones_like(logN)], axis=0)
        return np.sum(huber(1e-3, pred - logL))

    best = None
    starts = grid_starts(DEFAULT_GRID)[::every]
    for start in starts:
        res = minimize(objective, start, method="L-BFGS-B")
        if res.success and (best is None or res.fun < best.fun):
            best = res
    return best, len(starts)


def run() -> list[dict]:
    if not DATA.is_file():
        return [{"benchmark": "fit: Epoch 240 runs", "seconds": 0.0, "baseline": "skipped", "baseline_seconds": 0.0,
                 "note": f"{DATA} absent (only beside the development checkout)"}]
    import llmplan.scaling.fit as fit

    N, D, L = load()
    t0 = time.perf_counter()
    ours = fit.fit_parametric(N, D, L)
    ours_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    boot = fit.bootstrap_parametric(N, D, L, ours, 1000, 42)
    boot_s = time.perf_counter() - t0

    every = int(os.environ.get("LLMPLAN_BENCH_FIT_BASELINE_EVERY", "1"))
    t0 = time.perf_counter()
    base, count = baseline(N, D, L, every)
    base_s = (time.perf_counter() - t0) * (4500 / count)
    extrapolated = f" (timed on {count} starts, scaled to 4500)" if every > 1 else ""
    return [
        {
            "benchmark": "fit: Epoch 240 runs, 4500 starts",
            "seconds": ours_s,
            "baseline": "scipy L-BFGS-B, FD grad, each start",
            "baseline_seconds": base_s,
            "note": f"objective ours {ours.objective:.10e} (converged={ours.converged}) vs baseline {base.fun:.10e}{extrapolated}",
        },
        {
            "benchmark": "fit: --bootstrap 1000 (after the fit)",
            "seconds": boot_s,
            "baseline": "scipy L-BFGS-B, FD grad, each start",
            "baseline_seconds": base_s,
            "note": f"{int(boot.converged.sum())}/1000 refits converged; baseline = one grid fit, no bootstrap",
        },
    ]
