"""`llmplan memory`: one estimate, and the fit search behind --gpu (min GPUs, max batch, max context)."""

from __future__ import annotations

import time


def _best(fn, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def run() -> list[dict]:
    from llmplan import arch, memory

    shape = arch.Shape(layers=32, d_model=4096, heads=32, kv_heads=32, ffn=11008, vocab=32000, context=4096)
    req = memory.Request(shape=shape, train=True, batch=1, seq=4096)
    one = _best(lambda: memory.estimate(req))
    search = _best(lambda: memory.advice(req, 80e9), repeat=3)
    return [{
        "benchmark": "memory: fit search (7B train, A100 80GB)",
        "seconds": search,
        "baseline": "one memory.estimate",
        "baseline_seconds": one,
        "note": "binary searches over batch and context + GPU count scan",
    }]
