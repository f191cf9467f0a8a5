"""`llmplan memory`: one estimate, and the fit search behind --gpu (min GPUs, max batch, max context)."""

from __future__ import annotations

from timing import best_of


def run() -> list[dict]:
    from llmplan.model import arch
    from llmplan.systems.memory import estimate as memory
    from llmplan.systems.memory import advice

    shape = arch.Shape(layers=32, d_model=4096, heads=32, kv_heads=32, ffn=11008, vocab=32000, context=4096)
    req = memory.Request(shape=shape, train=True, batch=1, seq=4096)
    one = best_of(lambda: memory.estimate(req))
    search = best_of(lambda: advice.advice(req, 80e9), repeat=3)
    # What a layout search does: thousands of layouts of one model (issue 11), 405B on 16,384 GPUs.
    big = arch.Shape(layers=126, d_model=16384, heads=128, kv_heads=8, ffn=53248, vocab=128256, context=8192)
    layouts = [memory.Request(shape=big, train=True, seq=8192, gpus=16384, tp=tp, pp=pp, cp=cp, batch=mb, zero=zero,
                              recompute=rc, sequence_parallel=tp > 1)
               for tp in (1, 2, 4, 8) for pp in (1, 2, 4, 8, 16) for cp in (1, 2) for mb in (1, 2)
               for zero in (0, 1, 3) for rc in ("none", "selective", "full")]
    sweep = best_of(lambda: [memory.estimate(r) for r in layouts], repeat=3)
    return [{
        "benchmark": "memory: fit search (7B train, A100 80GB)",
        "seconds": search,
        "baseline": "one memory.estimate",
        "baseline_seconds": one,
        "note": "binary searches over batch and context + GPU count scan",
    }, {
        "benchmark": f"memory: {len(layouts)} layouts of a 405B model (a layout search's memory checks)",
        "seconds": sweep,
        "baseline": "one memory.estimate",
        "baseline_seconds": one,
        "note": "phases per layout, weights cached per shape, nothing built per layer",
    }]
