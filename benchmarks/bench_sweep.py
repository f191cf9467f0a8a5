"""A sweep of 100,000 budgets from stdin: `llmplan optimal --budget - -f tsv` in one process,
against bare `python -c pass` (the same interpreter's start-up) measured in the same run
(issue 15 aim: <= 50x). Byte-code cached as in bench_startup."""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from pathlib import Path

BUDGETS = 100_000

_spec = importlib.util.spec_from_file_location("bench_startup", Path(__file__).with_name("bench_startup.py"))
_startup = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_startup)


def _stdin() -> bytes:
    # log-spaced budgets from 1e18 to 1e28 FLOPs, one per line, as a user's script would write them
    step = 10.0 / (BUDGETS - 1)
    return "".join(f"{10 ** (18 + i * step):.6e}\n" for i in range(BUDGETS)).encode()


def run() -> list[dict]:
    data = _stdin()
    rows = []
    with tempfile.TemporaryDirectory(prefix="llmplan-bench-") as cache:
        env = _startup.environment(cache)
        baseline = _startup.best_of([sys.executable, "-c", "pass"], env)
        for fmt in ("tsv", "jsonl"):
            seconds = _startup.best_of([sys.executable, "-m", "llmplan", "optimal", "--budget", "-", "-f", fmt], env, repeat=3, data=data)
            rows.append({
                "benchmark": f"sweep: optimal, {BUDGETS:,} budgets, {fmt}",
                "seconds": seconds,
                "baseline": "python -c pass",
                "baseline_seconds": baseline,
                "note": f"{seconds / BUDGETS * 1e6:.1f} us per budget, one process; aim <= 50x" + (" FAIL" if seconds / baseline > 50 else ""),
            })
    return rows
