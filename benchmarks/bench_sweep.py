"""A sweep of 100,000 budgets from stdin: `llmplan optimal --budget - -f tsv` in one process,
against bare `python -c pass` (the same interpreter's start-up) measured in the same run."""

from __future__ import annotations

import subprocess
import sys
import time

BUDGETS = 100_000


def _stdin() -> bytes:
    # log-spaced budgets from 1e18 to 1e28 FLOPs, one per line, as a user's script would write them
    step = 10.0 / (BUDGETS - 1)
    return "".join(f"{10 ** (18 + i * step):.6e}\n" for i in range(BUDGETS)).encode()


def _best_of(argv: list[str], data: bytes | None, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, input=data, check=True, stdout=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - start)
    return best


def run() -> list[dict]:
    data = _stdin()
    baseline = _best_of([sys.executable, "-c", "pass"], None, 7)
    rows = []
    for fmt in ("tsv", "jsonl"):
        seconds = _best_of([sys.executable, "-m", "llmplan", "optimal", "--budget", "-", "-f", fmt], data, 3)
        rows.append({
            "benchmark": f"sweep: optimal, {BUDGETS:,} budgets, {fmt}",
            "seconds": seconds,
            "baseline": "python -c pass",
            "baseline_seconds": baseline,
            "note": f"{seconds / BUDGETS * 1e6:.1f} us per budget, one process",
        })
    return rows
