"""The MFU a training run reaches: the step-time model's fastest layout that fits, and `--mfu auto`.

- `best_layout`: the fastest layout that fits (llmplan.systems.layout_search.search, as `layout` ranks them);
- `utilisation`: the MFU that turns a step time into the 6ND budget;
- `auto_mfu`: `compute --mfu auto`, that MFU for a given model on given GPUs;
- `predicted_mfu`: that MFU for a published run (its GPU, GPU count, batch and sequence), for `compare`;
- `solve_mfu`: the fixed point behind `plan --mfu auto` and `optimal --mfu auto`: the MFU decides the
  budget, the budget the model, the model (through the step-time model) the MFU.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

from llmplan.errors import InputError, WorkError
from llmplan.systems.gpu import peak_flops

# --mfu auto: stop when the MFU changes by less than this between iterations (0.1 percentage points,
# below the spread between layouts of one model), give up after this many iterations.
MFU_TOLERANCE = 1e-3
MFU_MAX_ITERATIONS = 20


def solve_mfu(evaluate: Callable[[float], float], start: float, tolerance: float = MFU_TOLERANCE, max_iterations: int = MFU_MAX_ITERATIONS) -> tuple[float, list[float], str | None]:
    """The fixed point m = evaluate(m); returns it, the MFUs tried in order, and a remark or None.

    Plain iteration from `start` until g(m) = evaluate(m) - m changes sign (a bigger budget buys a
    bigger model that runs at a lower MFU, so plain iteration alone can oscillate), then bisection
    inside that bracket until |g| <= tolerance. The plan is discrete (whole layers, whole sequences,
    one layout or the next), so evaluate can jump across the diagonal: then no MFU reproduces itself
    and the bracket closes on the jump; the answer is its side where the layout runs at least as fast
    as assumed (the plan then finishes within the time given), said in the remark.
    WorkError (exit 1) when evaluate gives no MFU or no bracket is found within max_iterations."""
    history: list[float] = []

    def g(m: float) -> float:
        if len(history) >= max_iterations:
            tail = ", ".join(f"{x:.4f}" for x in history[-4:])
            raise WorkError(f"--mfu auto did not converge in {max_iterations} iterations (last MFUs tried {tail}); give --mfu X")
        history.append(m)
        new = evaluate(m)
        if not (isinstance(new, (int, float)) and math.isfinite(new) and 0 < new <= 1):
            raise WorkError(f"--mfu auto: the throughput model gave an MFU of {new!r} at iteration {len(history)}; give --mfu X instead")
        return new - m

    m, gm = start, g(start)
    while abs(gm) > tolerance:
        nxt = min(1.0, max(1e-3, m + gm))
        gn = g(nxt)
        if abs(gn) <= tolerance:
            return nxt, history, None
        if (gn > 0) != (gm > 0):  # bracketed: bisect
            lo, glo, hi, ghi = (m, gm, nxt, gn) if m < nxt else (nxt, gn, m, gm)
            while hi - lo > tolerance / 4:
                mid = 0.5 * (lo + hi)
                gmid = g(mid)
                if abs(gmid) <= tolerance:
                    return mid, history, None
                if (gmid > 0) == (glo > 0):
                    lo, glo = mid, gmid
                else:
                    hi, ghi = mid, gmid
            side, g_side = (lo, glo) if glo > 0 else (hi, ghi)
            remark = (f"the throughput model jumps from MFU {lo + glo:.3f} at {lo:.4f} to {hi + ghi:.3f} at {hi:.4f} (the shape, batch or layout "
                      f"changes in between), so no MFU reproduces itself exactly; planned at {side:.4f}, where the layout reaches {side + g_side:.3f}")
            return side, history, remark
        m, gm = nxt, gn
    return m, history, None


def describe_iterations(history: Sequence[float]) -> str:
    return f"--mfu auto took {len(history)} evaluations of the throughput model: MFU " + " -> ".join(f"{m:.3f}" for m in history)


def best_layout(shape: Any, seq: int, global_batch: int, gpu: Any, gpus: int, dtype: str, stack: Any = None) -> tuple[Any, str | None]:
    """The fastest layout that fits (llmplan.systems.layout_search.search, as `layout` ranks them) under the stack
    (llmplan.systems.stack.Stack; None: the default, Megatron-LM), or None and why not."""
    from llmplan.systems.layout_search import search
    from llmplan.systems.gpu import GPU
    from llmplan.systems.layout import Run

    cluster = GPU.from_preset(gpu, dtype)
    try:
        cluster.require_links(gpus)
    except InputError as error:
        return None, f"no layout: {error}"
    result = search(shape, Run(seq=seq, global_batch=global_batch, stack=stack), cluster, gpus, top=1, dtype=dtype)
    if not result.best:
        return None, f"no layout of this {arch_name(shape)} model fits in {gpu.id} memory on {gpus} GPUs; the plan's time and MFU are not checked against a layout"
    return result.best[0], None


def search_batch(seq: int) -> int:
    """About 4M tokens per step (Llama 2: 4M; GPT-3 175B: 3.2M), a power of two in sequences."""
    return 1 << max(0, (-(-4_000_000 // seq) - 1).bit_length())


def auto_mfu(shape: Any, gpu: Any, gpus: int, dtype: str, *, seq: int | None = None, train_context: int | None = None,
             global_batch: int | None = None, name: str | None = None, stack: Any = None) -> tuple[float, str]:
    """`compute --mfu auto`: the MFU of the fastest layout that fits for a given model, and the note that says so.

    The global batch of the layout search has two defaults, one per caller, kept as they were: `compute`
    has no batch law and takes search_batch(seq), about 4M tokens; `plan` (and `optimal --mfu auto`)
    give best_layout the hyperparameter law's batch in whole sequences (llmplan.planning.plan)."""
    if shape is None or shape.family != "decoder":
        raise InputError("--mfu auto needs a decoder model's shape: give --preset, --hf-config or --safetensors with a config.json")
    seq = seq or train_context or shape.context
    if dtype not in ("bf16", "fp16", "fp8"):
        raise InputError(f"--mfu auto models bf16, fp16 or fp8 training, not --dtype {dtype}")
    if global_batch is None:
        global_batch = search_batch(seq)
    from llmplan.systems.gpu import GPU

    GPU.from_preset(gpu, dtype).require_links(gpus)
    best, _ = best_layout(shape, seq, global_batch, gpu, gpus, dtype, stack)
    if best is None:
        raise InputError(f"--mfu auto: no layout of {gpus} x {gpu.id} fits {shape.name or name} at --seq {seq}; "
                         f"see 'llmplan layout' for what would, or give --mfu")
    from llmplan.systems.layout import describe
    from llmplan.systems.stack import default

    used = stack or default()
    said = (f"MFU {best.step.mfu:.1%} is predicted for the fastest layout that fits under the {used.id} stack ({describe(best.layout)}; "
            f"{global_batch} x {seq} tokens per step), not the 0.4 default; 'llmplan layout' shows the breakdown")
    sure = used.note(gpu.id)  # the stack's calibration on this GPU, or that it has none
    return best.step.mfu, said + (f"; {sure}" if sure else "")


def arch_name(shape: Any) -> str:
    from llmplan.units import format_count
    from llmplan.model import arch

    return format_count(arch.params(shape))


def utilisation(N: float, batch_tokens: int, step_seconds: float, gpus: int, peak: float) -> float:
    """The MFU that turns a step time into the 6ND budget: 6 N (tokens per step) / (step x GPUs x peak).
    (The layout's own MFU counts attention matmuls too, PaLM App. B; this one counts what C = 6ND counts.)"""
    return 6.0 * N * batch_tokens / (step_seconds * gpus * peak)


def predicted_mfu(model: Any, catalog: Any, stack: Any = None) -> float | None:
    """The throughput model's MFU for a published run (its GPU, GPU count, batch and sequence), counted
    as 6ND like compare's implied MFU; None when the preset lacks the setup or no layout fits."""
    from llmplan.model import arch

    gpus, batch, gpu_id = model.get("training_gpus"), model.get("global_batch"), model.get("gpu")
    if not (gpus and batch and gpu_id):
        return None
    shape = arch.Shape.from_preset(model)
    seq = int(model.get("train_context") or model.get("context"))
    device = catalog.get("gpus", gpu_id)
    best, _ = best_layout(shape, seq, int(batch), device, int(gpus), "bf16", stack)
    if best is None:
        return None
    N = model.get("active_params") or model["params"]
    return utilisation(N, int(batch) * seq, float(best.step.step_seconds), int(gpus), peak_flops(device, "bf16")[0])
