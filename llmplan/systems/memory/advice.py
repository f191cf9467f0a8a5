"""When a request does not fit: the fewest GPUs, the largest batch, the longest context that fit, and the
single changes worth trying (recomputation, LoRA, QLoRA, a fused or 8-bit optimizer, quantised weights or
KV cache), each checked by the estimate before it is offered.
"""

from __future__ import annotations

from dataclasses import field, replace
from typing import Any

from llmplan.errors import InputError
from llmplan.records import record
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


# ---------------------------------------------------------------------------- what to try

@record
class Try:
    """One thing to try when a request does not fit: the Request fields it changes (in the order they are
    typed) and the peak per GPU it gives; total_bytes is None for the limits `advice` found (fewest GPUs,
    largest batch, longest context). `name` is what the change is called, e.g. QLoRA."""

    changes: dict[str, Any] = field(default_factory=dict)
    total_bytes: float | None = None
    name: str | None = None


def candidates(req: Request, breakdown) -> list[Try]:
    """Single changes to the request worth checking, by what dominates the peak."""
    out: list[Try] = []
    if req.train:
        if req.recompute != "full" and breakdown.at_peak.get("activations", 0) > 0.1 * breakdown.total_bytes:
            out.append(Try({"recompute": "full"}))
        if not req.lora_rank:
            out.append(Try({"lora_rank": 16}))
            out.append(Try({"dtype": "nf4", "lora_rank": 16}, name="QLoRA"))
        if req.optimizer == "adamw":
            if breakdown.at_peak.get("transient", 0) > 0.05 * breakdown.total_bytes and breakdown.phase == "optimizer step":
                out.append(Try({"optimizer_impl": "fused"}))
            out.append(Try({"optimizer": "adamw-8bit"}))
    else:
        if req.dtype in ("fp32", "fp16", "bf16"):
            out.append(Try({"dtype": "int8"}))
            out.append(Try({"dtype": "int4"}))
        if req.kv_dtype is None or req.kv_dtype in ("fp32", "fp16", "bf16"):
            out.append(Try({"kv_dtype": "fp8"}))
    return out


def what_to_try(req: Request, breakdown, capacity: float, hints: dict) -> list[Try]:
    """What to try when it does not fit in `capacity` bytes: the limits in `hints` (advice's min_gpus,
    max_batch, max_context) that change something, then at most two single changes computed to fit."""
    out: list[Try] = []
    if hints.get("min_gpus"):
        n = hints["min_gpus"]
        out.append(Try({"gpus": n, "zero": 3} if req.train else {"gpus": n, "tp": n // max(1, req.pp)}))
    if hints.get("max_batch") and hints["max_batch"] < req.batch:
        out.append(Try({"batch": hints["max_batch"]}))
    if hints.get("max_context") and req.seq and hints["max_context"] < req.seq:
        out.append(Try({"seq": hints["max_context"]}))
    checked = []
    for change in candidates(req, breakdown):
        try:
            total = estimate(replace(req, **change.changes)).total_bytes
        except InputError:  # not possible for this model (e.g. LoRA without a shape)
            continue
        if total <= capacity:
            checked.append(replace(change, total_bytes=total))
    return out + checked[:2]
