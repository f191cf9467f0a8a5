"""When a request does not fit: the fewest GPUs, the largest batch, the longest context that fit, and the
single changes worth trying (recomputation, LoRA, QLoRA, a fused or 8-bit optimizer, quantised weights or
KV cache), each checked by the estimate before it is offered.
"""

from __future__ import annotations

from dataclasses import replace

from llmplan.errors import InputError
from llmplan.systems.memory.estimate import Request, estimate

def largest(fits, lo: int = 1, hi: int = 1 << 22) -> int | None:
    """Largest integer n in [lo, hi] with fits(n) true (fits monotone decreasing); None if none."""
    if not fits(lo):
        return None
    if fits(hi):
        return hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid
    return lo


def advice(req: Request, capacity: float) -> dict:
    """When it does not fit: fewest GPUs (ZeRO-3 training, tensor parallel serving), largest batch, longest context."""
    def ok(r: Request) -> bool:
        try:
            return estimate(r).total_bytes <= capacity
        except InputError:
            return False

    out: dict = {"min_gpus": None, "max_batch": None, "max_context": None}
    mp = req.tp * req.pp * req.cp  # a layout's GPUs are a multiple of tp · pp · cp (ep must divide dp · cp)
    for k in range(1, 4097):
        if req.train:
            candidate = replace(req, gpus=k * mp, zero=3 if k > 1 else req.zero)
        else:
            if k & (k - 1):
                continue  # tensor parallel degrees are powers of two
            candidate = replace(req, tp=k, gpus=k * req.pp)
        if ok(candidate):
            out["min_gpus"] = candidate.gpus
            break
    if req.shape is not None:
        out["max_batch"] = largest(lambda b: ok(replace(req, batch=b)), 1, 1 << 16)
        out["max_context"] = largest(lambda s: ok(replace(req, seq=s)), 1, 1 << 22)
    return out
