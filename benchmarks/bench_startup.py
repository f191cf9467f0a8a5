"""Start-up: whole-process time of a cheap command against bare `python -c pass`, same run."""

from __future__ import annotations

import subprocess
import sys
import time


def _best_of(argv: list[str], repeat: int = 7) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - start)
    return best


def run() -> list[dict]:
    baseline = _best_of([sys.executable, "-c", "pass"])
    rows = []
    for args in (["dtypes", "--format", "json"], ["presets", "list", "--kind", "models", "-f", "json"]):
        seconds = _best_of([sys.executable, "-m", "llmplan", *args])
        rows.append({
            "benchmark": "startup: llmplan " + " ".join(args[:3]),
            "seconds": seconds,
            "baseline": "python -c pass",
            "baseline_seconds": baseline,
            "note": "aim <= 8x",
        })
    return rows
