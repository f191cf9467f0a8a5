"""What a training layout is: the parallel layout, the run it trains, and which layouts can exist.

A layout is tp·pp·cp·dp = GPUs (Megatron-LM rank order tp, cp, dp, pp), with virtual pipeline stages,
expert parallelism carved out of dp·cp, a ZeRO stage, a micro-batch size, a recomputation mode and
sequence parallelism. `check_layout` says why one cannot exist and names a valid neighbour.
"""

from __future__ import annotations

from typing import Any

from llmplan.errors import InputError
from llmplan.records import record
from llmplan.systems.memory.activations import RECOMPUTE  # noqa: F401 (defined with the activations it keeps)


@record
class Layout:
    """A parallel layout: tp·pp·cp·dp GPUs; ep experts groups carved out of dp·cp (Megatron-Core)."""

    tp: int = 1
    pp: int = 1
    vp: int = 1  # virtual stages per pipeline rank (interleaved 1F1B)
    dp: int = 1
    cp: int = 1
    ep: int = 1
    zero: int = 0  # 0 none, 1 optimizer states, 2 + gradients, 3 + parameters (FSDP)
    micro_batch: int = 1  # sequences per micro-batch
    recompute: str = "none"  # none | selective | full
    sequence_parallel: bool = False

    @property
    def gpus(self) -> int:
        return self.tp * self.pp * self.cp * self.dp

    def keys(self) -> dict[str, Any]:
        return {"tp": self.tp, "pp": self.pp, "vp": self.vp, "dp": self.dp, "cp": self.cp, "ep": self.ep,
                "zero": self.zero, "micro_batch": self.micro_batch, "recompute": self.recompute,
                "sequence_parallel": self.sequence_parallel}


@record
class Run:
    """What is trained, independent of the layout: the sequence, the global batch, the kernels used."""

    seq: int
    global_batch: int  # sequences per step
    attention: str = "flash"  # flash | eager (Megatron fused softmax, s^2 scores in HBM)
    dropout: bool = False  # dropout on attention probabilities and residuals (GPT-3/Megatron: 0.1)
    overlap_dp: bool = True  # gradient reduction overlaps backward (PyTorch DDP buckets, Megatron --overlap-grad-reduce)
    compute_bytes: int = 2  # bytes of an activation value (bf16/fp16)
    stack: Any = None  # llmplan.systems.stack.Stack; None: the default stack (Megatron-LM)

    @property
    def software(self):
        """The stack this run uses (the default one when none was given)."""
        if self.stack is not None:
            return self.stack
        from llmplan.systems.stack import default

        return default()



def divisors(n: int) -> list[int]:
    return [k for k in range(1, n + 1) if n % k == 0]


def _nearest(value: int, allowed: list[int]) -> int:
    return min(allowed, key=lambda k: (abs(k - value), k))


def check_layout(shape, run, layout, gpus: int | None = None) -> None:
    """InputError (exit 2) naming the broken constraint and the nearest layout that keeps it."""
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
    if layout.pp > L:
        raise InputError(f"--pp {layout.pp} is more than the {L} layers (every stage needs one); try --pp {L} or fewer")
    split = getattr(run.software, "pipeline_split", "even")
    per_stage = int(max(stage_layers(L, layout.pp, split)))
    if layout.vp > 1 and layout.pp == 1:
        raise InputError("--vp (virtual pipeline stages) needs --pp 2 or more; drop --vp or add --pp")
    if layout.vp > per_stage:
        raise InputError(f"--vp {layout.vp} is more than the {per_stage} layers of the busiest pipeline stage; try --vp {_nearest(layout.vp, divisors(per_stage))}")
    if run.seq % layout.cp:
        raise InputError(f"--cp {layout.cp} does not divide --seq {run.seq}; try --cp {_nearest(layout.cp, divisors(run.seq))}")
    if layout.ep > 1:
        if not shape.experts:
            raise InputError(f"--ep {layout.ep} needs a mixture-of-experts model; this one has no experts (use --ep 1)")
        if shape.experts % layout.ep:
            raise InputError(f"--ep {layout.ep} does not divide the {shape.experts} experts; try --ep {_nearest(layout.ep, divisors(shape.experts))}")
    if gpus is not None and layout.gpus != gpus:
        mp = layout.tp * layout.pp * layout.cp
        if gpus % mp:
            raise InputError(f"--gpus {gpus} is not a multiple of tp x pp x cp = {mp}; try --gpus {max(mp, gpus // mp * mp)} or a tp/pp/cp whose product divides {gpus}")
        raise InputError(f"tp x pp x cp x dp = {layout.gpus} is not --gpus {gpus}")
    if layout.ep > 1 and (layout.dp * layout.cp) % layout.ep:
        raise InputError(f"--ep {layout.ep} must divide dp x cp = {layout.dp * layout.cp} (expert groups are carved out of the data-parallel ranks); "
                         f"try --ep {_nearest(layout.ep, [k for k in divisors(layout.dp * layout.cp) if shape.experts % k == 0])}")
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



def stage_layers(L, pp, split: str = "even"):
    """(layers of the busiest stage, layers of the last stage) of L layers on pp stages, as the stacks split them.

    even: ceil(L/pp) per stage, the last stage the rest (torchtitan's pipeline split; Megatron when pp divides L).
    embedding-and-loss (where pp does not divide L): the embedding and the loss each count as one layer (Megatron-LM
    --account-for-embedding-in-pipeline-split / --account-for-loss-in-pipeline-split; Llama 3 405B: 126 layers on
    16 stages, the first and last one layer fewer, Dubey et al. 2024 section 3.3.2): ceil((L+2)/pp) per stage, the
    first and last one fewer. Arithmetic only (numpy arrays of pp work)."""
    from llmplan.systems._arith import maximum, where

    even = -(-L // pp)
    even_last = maximum(L - even * (pp - 1), 1)
    if split == "embedding-and-loss":
        # the accounting flags are for stages pp does not divide evenly; where it does, stages are even
        busiest = where(pp > 1, -(-(L + 2) // pp), L)
        last = where(pp > 1, maximum(L - busiest * (pp - 2) - (busiest - 1), 1), L)
        divides = (L % pp) == 0
        return where(divides, even, busiest), where(divides, even_last, last)
    return even, even_last


def describe(layout) -> str:
    """A layout in words: 'tp 8, pp 2, vp 21, dp 1024, zero 1, micro-batch 1, recompute full, sp'."""
    parts = [f"tp {layout.tp}", f"pp {layout.pp}"]
    parts += [f"{k} {getattr(layout, k)}" for k in ("vp", "cp", "ep") if getattr(layout, k) > 1]
    parts += [f"dp {layout.dp}", f"zero {layout.zero}", f"micro-batch {layout.micro_batch}", f"recompute {layout.recompute}"]
    if layout.sequence_parallel:
        parts.append("sp")
    return ", ".join(parts)
