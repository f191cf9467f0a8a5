"""`llmplan layout`: every layout of a 405B model on 16,384 GPUs, against bare `python -c pass` in the same run.

Two measurements: the whole process (`llmplan layout ... -f json`, start-up and numpy import included),
and the search alone in this process (llmplan.systems.layout_search.search, numpy already imported).
"""

from __future__ import annotations

import subprocess
import sys

from timing import best_of

ARGS = ["layout", "--preset", "llama-3.1-405b", "--gpu", "h100", "--gpus", "16384", "--seq", "8192", "--global-batch", "2048", "-f", "json"]



def run() -> list[dict]:
    baseline = best_of(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True))
    whole = best_of(lambda: subprocess.run([sys.executable, "-m", "llmplan", *ARGS], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    import numpy  # noqa: F401  (imported once, as the command does)

    from llmplan.model import arch
    from llmplan.systems.layout_search import search
    from llmplan.presets import catalog
    from llmplan.systems.gpu import GPU
    from llmplan.systems.layout import Run

    cat = catalog()
    shape = arch.Shape.from_preset(cat.get("models", "llama-3.1-405b"))
    cluster = GPU.from_preset(cat.get("gpus", "h100"))
    holder = {}
    alone = best_of(lambda: holder.update(r=search(shape, Run(seq=8192, global_batch=2048), cluster, 16384)))
    n = holder["r"].evaluated
    return [
        {"benchmark": "layout: 405B on 16,384 H100 (whole process)", "seconds": whole, "baseline": "python -c pass",
         "baseline_seconds": baseline, "note": f"{n:,} valid layouts timed; aim: well under 1 s"},
        {"benchmark": "layout: the search alone (in process)", "seconds": alone, "baseline": "python -c pass",
         "baseline_seconds": baseline, "note": f"{holder['r'].checked} exact memory estimates"},
    ]
