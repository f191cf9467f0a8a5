"""The bootstrap of the parametric fit: resample the runs with replacement and refit each resample
(the Epoch replication's percentile bootstrap, Besiroglu et al. 2024).

numpy is imported inside the functions that need it (the CLI must start without it).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Sequence

from llmplan.records import record
from llmplan.scaling.fit.lbfgs import batched_lbfgs
from llmplan.scaling.fit.parametric import BUDGETS, CONVERGED_RTOL, ParametricFit, _arrays, derived, objective_and_gradient


@record(frozen=False)
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
