"""Start-up: whole-process time of help and of commands that need no numpy, against bare
`python -c pass`, measured in the same run (issue 15 aims: help <= 8x, no-numpy commands <= 6x).

Byte-code is cached in a temporary folder (PYTHONPYCACHEPREFIX) and warmed once, as in an
installed package; a checkout run with PYTHONDONTWRITEBYTECODE=1 would otherwise compile every
module on every start and measure the compiler.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

HELP = [["--help"]] + [[name, "--help"] for name in ("optimal", "loss", "compute", "compare", "fit", "arch", "memory", "dtypes", "gpus", "presets")]
NO_NUMPY = [
    ["memory", "--preset", "llama-2-7b"],
    ["memory", "--preset", "llama-2-7b", "--gpu", "h100"],
    ["arch", "--preset", "llama-2-7b"],
    ["loss", "--params", "7B", "--tokens", "1T"],
    ["compute", "--params", "7B", "--tokens", "1T"],
    ["optimal", "--budget", "1e24"],
    ["dtypes", "--format", "json"],
    ["presets", "list", "--kind", "models", "-f", "json"],
]


# Issue 25: commands that search nothing start within 1.5x of importing typer alone (the floor any
# typer CLI pays), measured against `python -c "import typer"` in the same run.
SEARCH_NOTHING = [
    ["memory", "--preset", "llama-2-7b"],
    ["arch", "--preset", "llama-2-7b"],
    ["optimal", "--budget", "1e24"],
    ["compute", "--params", "7B", "--tokens", "1T"],
]
TYPER_AIM = 1.5


def environment(cache: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE" and not k.startswith("LLMPLAN_")}
    env["PYTHONPYCACHEPREFIX"] = cache
    return env


def best_of(argv: list[str], env: dict[str, str], repeat: int = 7, data: bytes | None = None) -> float:
    subprocess.run(argv, input=data, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # warm the byte-code cache
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, input=data, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - start)
    return best


def interleaved(baseline: list[str], commands: list[list[str]], env: dict[str, str], rounds: int = 15) -> tuple[float, list[float]]:
    """The best time of the baseline and of each command over `rounds` rounds, each round running them all in turn."""
    for argv in [baseline, *commands]:  # warm the byte-code cache
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    best = [float("inf")] * (len(commands) + 1)
    for _ in range(rounds):
        for i, argv in enumerate([baseline, *commands]):
            start = time.perf_counter()
            subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            best[i] = min(best[i], time.perf_counter() - start)
    return best[0], best[1:]


def run() -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="llmplan-bench-") as cache:
        env = environment(cache)
        baseline = best_of([sys.executable, "-c", "pass"], env)
        for args, aim in [(a, "aim <= 8x") for a in HELP] + [(a, "aim <= 6x (no numpy)") for a in NO_NUMPY]:
            seconds = best_of([sys.executable, "-m", "llmplan", *args], env)
            rows.append({
                "benchmark": "startup: llmplan " + " ".join(args[:4]),
                "seconds": seconds,
                "baseline": "python -c pass",
                "baseline_seconds": baseline,
                "note": aim + (" FAIL" if seconds / baseline > (8 if "8x" in aim else 6) else ""),
            })
        # Interleaved rounds, the best of each: a few-percent aim needs the baseline and the commands timed
        # under the same load, not one after the other.
        typer_alone, timed = interleaved([sys.executable, "-c", "import typer"],
                                         [[sys.executable, "-m", "llmplan", *args] for args in SEARCH_NOTHING], env)
        for args, seconds in zip(SEARCH_NOTHING, timed):
            rows.append({
                "benchmark": "startup: llmplan " + " ".join(args[:4]),
                "seconds": seconds,
                "baseline": "python -c 'import typer'",
                "baseline_seconds": typer_alone,
                "note": f"aim <= {TYPER_AIM}x import typer" + (" FAIL" if seconds / typer_alone > TYPER_AIM else ""),
            })
    return rows
