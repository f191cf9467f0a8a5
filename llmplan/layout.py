"""Parallel layouts: which ones can exist, and the search for the fastest one that fits in memory.

A layout is tp·pp·cp·dp = GPUs (Megatron-LM rank order tp, cp, dp, pp), with virtual pipeline stages,
expert parallelism carved out of dp·cp, a ZeRO stage, a micro-batch size, a recomputation mode and
sequence parallelism. `check_layout` says why one cannot exist and names a valid neighbour;
`search` enumerates every valid layout, evaluates the step-time model on all of them at once
(numpy arrays through llmplan.throughput), keeps those that fit and ranks them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from llmplan.errors import InputError


def divisors(n: int) -> list[int]:
    return [k for k in range(1, n + 1) if n % k == 0]


def _nearest(value: int, allowed: list[int]) -> int:
    return min(allowed, key=lambda k: (abs(k - value), k))


def check_layout(shape, run, layout, gpus: int | None = None) -> None:
    """InputError (exit 2) naming the broken constraint and the nearest layout that keeps it."""
    from llmplan.throughput import RECOMPUTE

    for name in ("tp", "pp", "vp", "dp", "cp", "ep", "micro_batch"):
        value = getattr(layout, name)
        if int(value) != value or value < 1:
            raise InputError(f"--{name.replace('_', '-')} must be a positive whole number, not {value}")
    if layout.zero not in (0, 1, 2, 3):
        raise InputError(f"--zero {layout.zero} does not exist; use 0, 1, 2 or 3 (FSDP full sharding is 3)")
    if layout.recompute not in RECOMPUTE:
        raise InputError(f"--recompute {layout.recompute!r}: use none, selective or full")
    if run.seq < 1 or run.global_batch < 1:
        raise InputError("--seq and the global batch must be positive")
    heads, L = shape.heads, shape.layers
    if heads % layout.tp:
        raise InputError(f"--tp {layout.tp} does not divide the {heads} attention heads; try --tp {_nearest(layout.tp, divisors(heads))}")
    if layout.pp > L or L % layout.pp:
        raise InputError(f"--pp {layout.pp} does not divide the {L} layers; try --pp {_nearest(layout.pp, divisors(L))}")
    per_stage = L // layout.pp
    if layout.vp > 1 and layout.pp == 1:
        raise InputError("--vp (virtual pipeline stages) needs --pp 2 or more; drop --vp or add --pp")
    if per_stage % layout.vp:
        raise InputError(f"--vp {layout.vp} does not divide the {per_stage} layers of each pipeline stage; try --vp {_nearest(layout.vp, divisors(per_stage))}")
    if run.seq % layout.cp:
        raise InputError(f"--cp {layout.cp} does not divide --seq {run.seq}; try --cp {_nearest(layout.cp, divisors(run.seq))}")
    if layout.ep > 1:
        if not shape.experts:
            raise InputError(f"--ep {layout.ep} needs a mixture-of-experts model; this one has no experts (use --ep 1)")
        if shape.experts % layout.ep:
            raise InputError(f"--ep {layout.ep} does not divide the {shape.experts} experts; try --ep {_nearest(layout.ep, divisors(shape.experts))}")
        if (layout.dp * layout.cp) % layout.ep:
            raise InputError(f"--ep {layout.ep} must divide dp x cp = {layout.dp * layout.cp} (expert groups are carved out of the data-parallel ranks); "
                             f"try --ep {_nearest(layout.ep, [k for k in divisors(layout.dp * layout.cp) if shape.experts % k == 0])}")
    if gpus is not None and layout.gpus != gpus:
        mp = layout.tp * layout.pp * layout.cp
        if gpus % mp:
            raise InputError(f"--gpus {gpus} is not a multiple of tp x pp x cp = {mp}; try --gpus {max(mp, gpus // mp * mp)} or a tp/pp/cp whose product divides {gpus}")
        raise InputError(f"tp x pp x cp x dp = {layout.gpus} is not --gpus {gpus}")
    replicas = layout.dp * layout.micro_batch
    if run.global_batch % replicas:
        fits = [k for k in divisors(max(1, run.global_batch // layout.dp)) if run.global_batch % (layout.dp * k) == 0] or [1]
        hint = f"try --micro-batch {_nearest(layout.micro_batch, fits)}" if run.global_batch % layout.dp == 0 else \
            f"try a global batch that is a multiple of dp = {layout.dp}, e.g. {(run.global_batch // layout.dp + 1) * layout.dp}"
        raise InputError(f"the global batch of {run.global_batch} sequences does not split into dp = {layout.dp} replicas x micro-batch {layout.micro_batch}; {hint}")
    m = run.global_batch // replicas
    if layout.vp > 1 and m % layout.pp:
        raise InputError(f"the interleaved schedule (--vp {layout.vp}) needs the {m} micro-batches per replica to be a multiple of --pp {layout.pp}; "
                         f"change --micro-batch or the global batch, or use --vp 1")
