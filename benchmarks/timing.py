"""What the benchmarks share: the best of a few timed runs (the least disturbed by the machine's load)."""

from __future__ import annotations

import time


def best_of(fn, repeat: int = 5) -> float:
    """The shortest of `repeat` wall-clock times of fn(), in seconds."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best
