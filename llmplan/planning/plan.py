"""The whole plan of a training run: budget from hardware time, law, shape, hyperparameters, time, money.

`plan_record` composes the lower modules into one flat record (the keys are a contract, docs/schema.md):
- budget: llmplan.systems.budget (GPUs x dense peak x MFU x time x goodput), or the question's own compute;
- N, D and loss: llmplan.scaling.optimal.solve under the chosen law (with --params, --tokens, --unique-tokens,
  --inference-tokens, --target-loss composing as in `optimal`);
- shape: llmplan.model.propose.propose, the same LLaMA-style shape as `arch --target`, with its exact count;
- batch size and learning rate: llmplan.scaling.hparams, the law's own values and the whole-sequence batch run;
- time, GPU-hours, cost and energy (a node's rated power per GPU x GPUs x time x PUE; board power where
  the GPU preset records no node).
`--mfu auto` iterates the MFU to the fixed point of the step-time model (llmplan.systems.mfu.solve_mfu).
"""

from __future__ import annotations

import math
from typing import Any

from llmplan.errors import InputError, WorkError
from llmplan.systems.mfu import best_layout, solve_mfu, utilisation

DEFAULT_SEQ = 4096  # LLaMA 2 / DeepSeek LLM pre-training context (Touvron et al. 2023b Table 1; DeepSeek-AI 2024 Table 2)
# Power usage effectiveness of the data centre: 1.10 for the GPT-3 run in Patterson et al. 2021,
# "Carbon Emissions and Large Neural Network Training" (arXiv:2104.10350), Table 4.
DEFAULT_PUE = 1.1
JOULES_PER_KWH = 3.6e6

def energy_joules(watts_per_gpu: float, gpus: int, seconds: float, pue: float) -> float:
    """E = power per GPU x GPUs x wall time x PUE (the facility's overhead on the IT load, Patterson et al. 2021)."""
    return watts_per_gpu * gpus * seconds * pue


def node_watts_per_gpu(gpu: Any) -> float | None:
    """A node's rated power divided by its GPUs (DGX H100: 10.2 kW / 8 = 1,275 W), or None where the preset
    records no node power: the GPUs' share of CPUs, memory, NICs, switches and fans, beside their own boards."""
    node, per_node = gpu.get("node_power_watts"), gpu.get("gpus_per_node")
    if not node or not per_node:
        return None
    return float(node) / int(per_node)


def whole_sequence_batch(batch_tokens: float, seq: int, multiple: int) -> int:
    """The law's batch in whole sequences, rounded down to a multiple of `multiple` (never past the law), at least one of it."""
    sequences = batch_tokens / seq
    return max(1, math.floor(sequences / multiple + 1e-9)) * multiple


# A published run is "of this scale" when its training compute is within this factor of the plan's.
SCALE_FACTOR = 10.0


def published_settings(runs: Any, flops: float) -> tuple[Any, list[Any]]:
    """The published run nearest in compute (log distance), and every run within SCALE_FACTOR of it (presets/runs.toml)."""
    if not runs:
        return None, []
    nearest = min(runs, key=lambda r: abs(math.log(float(r["flops"]) / flops)))
    scale = [r for r in runs if 1 / SCALE_FACTOR <= float(r["flops"]) / flops <= SCALE_FACTOR]
    return nearest, scale


def batch_warning(batch_tokens: float, flops: float, nearest: Any, scale: list[Any]) -> str | None:
    """A warning when the batch run is larger than every published run within SCALE_FACTOR of this compute
    used (or, with none that close, than the run nearest in compute), naming them."""
    from llmplan.units import format_count

    if nearest is None:
        return None
    ceiling = max(scale or [nearest], key=lambda r: float(r["max_batch_tokens"]))
    if batch_tokens <= float(ceiling["max_batch_tokens"]):
        return None
    where = f"within {SCALE_FACTOR:g}x of this compute" if scale else "nearest in compute"
    said = (f"the batch run, {format_count(batch_tokens)} tokens, is larger than the batch of any published run {where}: "
            f"the largest is {ceiling['name']}'s {format_count(float(ceiling['max_batch_tokens']))}")
    if nearest is not ceiling:
        lr = nearest.get("learning_rate")
        said += (f"; nearest in compute, {nearest['name']} ran {format_count(float(nearest['max_batch_tokens']))}"
                 + (f" at peak learning rate {lr:.2g}" if lr else ""))
    return said + "; the hyperparameter law is extrapolated here (see 'llmplan presets list --kind runs')"


def batch_multiple(batch_tokens: float, seq: int, gpus: int) -> int:
    """What the batch is rounded to: the largest divisor of the GPU count that is not above the law's
    batch in sequences. Every data-parallel size dp = GPUs / (tp·pp·cp) that divides it splits the batch
    into whole micro-batches, and the batch stays near the law's (rounding to all GPUs would make it up
    to GPUs / dp times larger)."""
    sequences = max(1, int(batch_tokens // seq))
    return max(d for d in _divisors(gpus) if d <= sequences)


def _divisors(n: int) -> list[int]:
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


# The plan agrees with itself when the layout's steps x step time is the training time it budgets;
# where the fixed point closes on a jump (no MFU reproduces itself), more than this relative gap
# between the MFU planned and the layout's is closed by training the model for the time given.
CONSISTENCY = 0.005


# The gap between the law's N and its nearest conventional shape beyond which the plan warns
# (model/propose.py stays within 7.2% from 1B to 10T parameters).
SHAPE_GAP = 0.1


def _default_stack() -> Any:
    from llmplan.systems.stack import default

    return default()


def plan_record(
    law: Any,
    hparams: Any,
    hardware: Any,
    *,
    params: float | None = None,
    tokens: float | None = None,
    target_loss: float | None = None,
    unique_tokens: float | None = None,
    inference_tokens: float | None = None,
    seq: int = DEFAULT_SEQ,
    price: float | None = None,
    pue: float = DEFAULT_PUE,
    gpu: Any = None,
    from_hardware_time: bool = True,
    auto_mfu: bool = False,
    strict_auto: bool = True,
    with_layout: bool = True,
    kv_heads: int | None = None,
    runs: Any = None,
    stack: Any = None,  # llmplan.systems.stack.Stack of the layout search (None: the default)
) -> tuple[dict[str, Any], list[str], list[str]]:
    """One plan as a flat record, with the warnings and notes it should be read with.

    `hardware` is a llmplan.systems.budget.HardwareBudget. With `from_hardware_time` its FLOPs are the budget
    (and the plan's wall time is its calendar time); without, the question fixes the compute
    (--params with --tokens, --target-loss, ...) and the wall time follows from it. `gpu` is the GPU
    preset (node and board power, and the layout search).

    One MFU drives the plan, counted as C = 6ND counts it (`utilisation`). With `auto_mfu` it is the
    MFU of the fastest layout that fits for the model it buys (the fixed point `solve_mfu`), so the
    layout's steps x step time is the training time; `strict_auto` False falls back to the MFU in
    `hardware` (with a warning) where no layout fits. Without, the MFU in `hardware` is the budget's,
    and a note says when the fastest layout does not reach it and how long the run then takes."""
    notes: list[str] = []

    def build(mfu: float) -> tuple[dict[str, Any], list[str], Any]:
        return _record(law, hparams, hardware.with_mfu(mfu), params, tokens, target_loss, unique_tokens, inference_tokens,
                       seq, price, pue, gpu, from_hardware_time, with_layout or auto_mfu, kv_heads, runs, stack)

    if auto_mfu:
        cache: dict[float, tuple] = {}

        def evaluate(m: float) -> float:
            cache[m] = build(m)
            record = cache[m][0]
            if record["step_seconds"] is None:
                raise WorkError(f"--mfu auto: {cache[m][1][-1] if cache[m][1] else 'no layout fits'}; give --mfu X")
            return utilisation(record["params"], record["global_batch_tokens"], record["step_seconds"], hardware.gpus, hardware.peak)

        try:
            mfu, history, remark = solve_mfu(evaluate, hardware.mfu)
        except WorkError:
            if strict_auto or not cache or any(c[0]["step_seconds"] is not None for c in cache.values()):
                raise
            record, warnings, _ = cache[hardware.mfu]
            warnings.append(f"no layout fits, so no step time gives the MFU: the budget assumes MFU {hardware.mfu:.0%} "
                            "(observed 0.3-0.55 in published runs); give --mfu to change it")
            record["mfu_source"] = "default"
            record["mfu_iterations"] = None
            return record, warnings, notes
        record, warnings, _ = cache[mfu] if mfu in cache else build(mfu)
        record["mfu_source"] = "layout"
        record["mfu_iterations"] = len(history)
        notes.append(f"the MFU is the fastest layout's for the model it buys, a fixed point found in {len(history)} evaluations "
                     "of the throughput model: MFU " + " -> ".join(f"{m:.3f}" for m in history))
        achieved = utilisation(record["params"], record["global_batch_tokens"], record["step_seconds"], hardware.gpus, hardware.peak)
        if from_hardware_time and abs(achieved - mfu) > CONSISTENCY * mfu:
            notes.append(_fill_time(record, law, hardware, unique_tokens, inference_tokens, remark))
        elif remark:
            notes.append(remark)
    else:
        record, warnings, _ = build(hardware.mfu)
        record["mfu_source"] = "given"
        record["mfu_iterations"] = None
        if record["step_seconds"] is not None:
            said = _layout_against_given(record, hardware)
            if said:
                notes.append(said)
    if record.get("step_seconds") is not None and gpu is not None:
        said = (stack if stack is not None else _default_stack()).note(gpu.id)  # how sure the layout's step time is
        if said:
            notes.append(said)
    return record, warnings, notes


def _fill_time(record: dict[str, Any], law: Any, hardware: Any, unique_tokens: float | None, inference_tokens: float | None,
               remark: str | None) -> str:
    """The fixed point closed on a jump: keep the law's N, batch and layout, and train for the time
    given (whole steps at the layout's step time), so steps x step time = training time. The MFU is
    then the layout's, C = 6ND, and the loss is the law's at that N and D. Returns the note that says so."""
    from llmplan.rows import checked, out_of_range
    from llmplan.scaling.optimal import solve
    from llmplan.units import PF_DAY, format_count

    planned, law_tokens = record["mfu"], record["tokens"]
    steps = max(1, round(record["training_seconds"] / record["step_seconds"]))
    D = steps * record["global_batch_tokens"]
    N = record["params"]
    if unique_tokens is not None:  # the data-constrained law at a given N and D (its solve takes budgets only)
        from llmplan.scaling.data_constrained import constrained_loss_row

        row = constrained_loss_row(N, D, unique_tokens, law)
    else:
        with out_of_range():
            (row,) = checked(solve(law, [], params=N, tokens=D, inference_tokens=inference_tokens))
    C = 6.0 * N * D
    mfu = C / (hardware.gpus * hardware.peak * record["training_seconds"])
    record.update({
        "tokens": round(D), "tokens_per_param": D / N, "loss": row.get("loss"), "epochs": row.get("epochs"),
        "steps": steps, "flops": C, "pf_days": C / PF_DAY, "mfu": mfu,
        "layout_training_seconds": steps * record["step_seconds"],
    })
    why = "the throughput model jumps between layouts or shapes there, so no MFU reproduces itself" if remark else \
        "the fixed point stopped short of the layout's MFU"
    return (f"planned the model at MFU {planned:.1%} ({why}); its layout reaches {mfu:.1%}, so the run trains "
            f"{format_count(D)} tokens (the law's optimum at that MFU: {format_count(law_tokens)}) to fill the time given")


def _layout_against_given(record: dict[str, Any], hardware: Any) -> str | None:
    """With --mfu X: a note when the fastest layout does not reach X (or goes well past it), with the time the run then takes."""
    from llmplan.units import format_duration

    reached = utilisation(record["params"], record["global_batch_tokens"], record["step_seconds"], hardware.gpus, hardware.peak)
    wall = record["layout_training_seconds"] / hardware.goodput
    if reached < record["mfu"] * (1 - CONSISTENCY):
        return (f"the fastest layout that fits reaches only MFU {reached:.1%}, not the {record['mfu']:.1%} given: at it this run takes "
                f"{format_duration(wall)}, not {format_duration(record['wall_seconds'])} (leave out --mfu to plan at the layout's MFU)")
    if reached > record["mfu"] * (1 + CONSISTENCY):
        return (f"the fastest layout that fits reaches MFU {reached:.1%}, above the {record['mfu']:.1%} given: at it this run takes "
                f"{format_duration(wall)} (leave out --mfu to plan at the layout's MFU)")
    return None


def _record(law, hparams, hardware, params, tokens, target_loss, unique_tokens, inference_tokens, seq, price, pue, gpu, from_hardware_time, with_layout,
            kv_heads=None, runs=None, stack=None):
    from llmplan.model import arch
    from llmplan.model.propose import propose
    from llmplan.scaling.hparams import hparam_fields
    from llmplan.rows import checked, mark_extrapolation, out_of_range
    from llmplan.scaling.optimal import solve
    from llmplan.units import PF_DAY

    warnings: list[str] = []
    budgets = [hardware.flops] if from_hardware_time else []
    with out_of_range():
        (row,) = checked(solve(law, budgets, params=params, tokens=tokens, target_loss=target_loss, unique_tokens=unique_tokens, inference_tokens=inference_tokens))
    warning = mark_extrapolation(law, [row])
    if warning:
        warnings.append(warning)
    C, N, D = float(row["flops"]), float(row["params"]), float(row["tokens"])
    if not (1e6 <= N <= 1e13):
        raise InputError(f"the plan's model has {N:.3g} parameters, outside the 1M-10T range shapes are proposed for; give more or less hardware time")
    (shape,) = propose(N, n=1, context=seq, kv_heads=kv_heads)
    shape_params = arch.params(shape)
    non_embedding = arch.non_embedding_params(shape)
    if abs(shape_params / N - 1) > SHAPE_GAP:
        # Below ~10M parameters the smallest conventional shape (6 layers x 128) is far from N: say so.
        warnings.append(f"the nearest conventional shape has {shape_params:,} parameters, {shape_params / N - 1:+.0%} from the law's "
                        f"{N:,.0f}: the budget, tokens and MFU count the law's N, not this shape")

    # Hyperparameters: the law's own values, at the law's parameter convention.
    hp_params = non_embedding if hparams.convention == "non-embedding" else shape_params
    from llmplan.scaling.hparams import deepseek_M

    C_hp = deepseek_M(non_embedding, shape.layers, shape.d_model, seq) * D if hparams.compute == "MD" else C
    hp = hparam_fields(hparams, C_hp, hp_params, D)
    hp_warning = hparams.extrapolation_warning(C_hp, hp_params, D)
    if hp_warning:
        warnings.append(hp_warning)
    global_batch = whole_sequence_batch(hp["batch_tokens"], seq, batch_multiple(hp["batch_tokens"], seq, hardware.gpus))
    batch_run = global_batch * seq
    # Beside the law's values, what published runs of this scale used (presets/runs.toml).
    nearest, scale = published_settings(runs, C)
    said = batch_warning(batch_run, C, nearest, scale)
    if said:
        warnings.append(said)
    published = {
        "published_run": None if nearest is None else nearest.id,
        "published_run_flops": None if nearest is None else float(nearest["flops"]),
        "published_batch_tokens": None if nearest is None else float(nearest["max_batch_tokens"]),
        "published_learning_rate": None if nearest is None else nearest.get("learning_rate"),
        "published_run_name": None if nearest is None else nearest.name,
    }
    steps = math.ceil(D / batch_run)

    # The layout `layout` would pick for this model on these GPUs, at this batch.
    fields = {k: None for k in ("tp", "pp", "vp", "dp", "cp", "ep", "zero", "micro_batch", "micro_batches", "recompute", "sequence_parallel",
                                "memory_per_gpu_bytes", "step_seconds", "layout_training_seconds")}
    if with_layout and gpu is not None:
        best, why = best_layout(shape, seq, global_batch, gpu, hardware.gpus, hardware.dtype, stack)
        if best is None:
            warnings.append(why)
        else:
            fields.update(best.layout.keys())
            fields["micro_batches"] = global_batch // (best.layout.dp * best.layout.micro_batch)
            fields["memory_per_gpu_bytes"] = round(best.memory.total_bytes)
            fields["step_seconds"] = float(best.step.step_seconds)
            fields["layout_training_seconds"] = steps * float(best.step.step_seconds)
            caveat = (stack if stack is not None else _default_stack()).caveat(best.layout)
            if caveat:
                warnings.append(caveat)

    # Time: calendar time = C / (GPUs x peak x MFU x goodput); the budget from hardware time gives it back.
    training_seconds = C / (hardware.gpus * hardware.peak * hardware.mfu)
    wall = training_seconds / hardware.goodput
    gpu_hours = hardware.gpus * wall / 3600.0
    tdp_watts = gpu.get("tdp_watts") if gpu is not None else None
    node_watts = node_watts_per_gpu(gpu) if gpu is not None else None
    watts, basis = (node_watts, "node") if node_watts is not None else (tdp_watts, "board") if tdp_watts is not None else (None, None)

    record: dict[str, Any] = {
        # model
        "law": law.id,
        "params": round(N),  # counts are whole numbers (D = C / 6N holds to rounding)
        "params_convention": law.convention,
        "loss": row.get("loss"),
        "extrapolated": row.get("extrapolated"),
        "shape_layers": shape.layers,
        "shape_d_model": shape.d_model,
        "shape_heads": shape.heads,
        "shape_kv_heads": shape.n_kv_heads,
        "shape_ffn": shape.d_ffn,
        "shape_vocab": shape.vocab,
        "shape_params": shape_params,
        "shape_non_embedding_params": non_embedding,
        # data
        "tokens": round(D),
        "tokens_per_param": D / N,
        "unique_tokens": None if unique_tokens is None else round(unique_tokens),
        "epochs": row.get("epochs"),
        "inference_tokens": None if inference_tokens is None else round(inference_tokens),
        # optimisation
        **hp,
        **published,
        "seq": seq,
        "global_batch": global_batch,
        "global_batch_tokens": batch_run,
        "steps": steps,
        # hardware
        "gpu": hardware.gpu,
        "gpus": hardware.gpus,
        "dtype": hardware.dtype,
        "peak_flops_per_second": hardware.peak,
        "mfu": hardware.mfu,
        **fields,
        # time and money
        "flops": C,
        "pf_days": C / PF_DAY,
        "goodput": hardware.goodput,
        "training_seconds": training_seconds,
        "wall_seconds": wall,
        "gpu_hours": gpu_hours,
        "price_usd_per_gpu_hour": price,
        "cost_usd": None if price is None else gpu_hours * price,
        "tdp_watts": tdp_watts,
        "node_watts_per_gpu": node_watts,
        "energy_basis": basis,
        "pue": pue,
        "energy_joules": None if watts is None else energy_joules(watts, hardware.gpus, wall, pue),
    }
    record["energy_kwh"] = None if record["energy_joules"] is None else record["energy_joules"] / JOULES_PER_KWH
    return record, warnings, shape


# Where each number comes from (`plan --explain`): key -> source.
SOURCES: dict[str, str] = {
    "flops": "GPUs x dense peak x MFU x calendar time x goodput (llmplan.systems.budget)",
    "params": "the law's compute-optimal split of the budget, C = 6ND",
    "tokens": "D = C / (6N)",
    "loss": "the law's L(N, D)",
    "shape_params": "the nearest shape for N by today's conventions (as `arch --target`), exact count",
    "batch_tokens": "the hyperparameter law's optimal batch (its own value; DeepSeek at C = M·D, M non-embedding FLOPs per token)",
    "learning_rate": "the hyperparameter law's optimal peak learning rate",
    "global_batch": "batch_tokens in whole sequences, rounded down to a divisor of the GPU count",
    "steps": "tokens / (global_batch x seq)",
    "mfu": "6N x tokens per step / (step time x GPUs x peak) of the fastest layout, at the fixed point of budget and model (or --mfu)",
    "tp": "the fastest layout that fits (llmplan layout search) for this shape, batch and GPUs",
    "memory_per_gpu_bytes": "peak memory per GPU of that layout (llmplan memory)",
    "step_seconds": "the throughput model's step time for that layout",
    "goodput": "--goodput; default 0.9, Llama 3 (Dubey et al. 2024 Sec. 3.3.4): more than 90% effective training time",
    "wall_seconds": "C / (GPUs x peak x MFU x goodput) = steps x step time / goodput",
    "gpu_hours": "GPUs x wall time",
    "cost_usd": "GPU-hours x --price",
    "energy_kwh": "node power per GPU (the DGX system's rated maximum / its GPUs; else the board's TDP) x GPUs x wall time x PUE (default 1.1, Patterson et al. 2021 Table 4)",
}
