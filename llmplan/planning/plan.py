"""The whole plan of a training run: budget from hardware time, law, shape, hyperparameters, time, money.

`plan_record` composes the lower modules into one flat record (the keys are a contract, docs/schema.md):
- budget: llmplan.systems.budget (GPUs x dense peak x MFU x time x goodput), or the question's own compute;
- N, D and loss: llmplan.scaling.optimal.solve under the chosen law (with --params, --tokens, --unique-tokens,
  --inference-tokens, --target-loss composing as in `optimal`);
- shape: llmplan.model.propose.propose, the same LLaMA-style shape as `arch --target`, with its exact count;
- batch size and learning rate: llmplan.scaling.hparams, the law's own values and the whole-sequence batch run;
- time, GPU-hours, cost and energy (board power x GPUs x time x PUE).
`--mfu auto` iterates the MFU to the fixed point of the step-time model (llmplan.systems.mfu.solve_mfu).
"""

from __future__ import annotations

import math
from typing import Any

from llmplan.errors import InputError, WorkError
from llmplan.systems.mfu import best_layout, describe_iterations, solve_mfu, utilisation

DEFAULT_SEQ = 4096  # LLaMA 2 / DeepSeek LLM pre-training context (Touvron et al. 2023b Table 1; DeepSeek-AI 2024 Table 2)
# Power usage effectiveness of the data centre: 1.10 for the GPT-3 run in Patterson et al. 2021,
# "Carbon Emissions and Large Neural Network Training" (arXiv:2104.10350), Table 4.
DEFAULT_PUE = 1.1
JOULES_PER_KWH = 3.6e6

def energy_joules(tdp_watts: float, gpus: int, seconds: float, pue: float) -> float:
    """E = board power x GPUs x wall time x PUE: an upper bound, GPUs seldom draw their full TDP."""
    return tdp_watts * gpus * seconds * pue


def whole_sequence_batch(batch_tokens: float, seq: int, multiple: int) -> int:
    """The law's batch in whole sequences, rounded to a multiple of `multiple`, at least one of it."""
    sequences = batch_tokens / seq
    return max(1, round(sequences / multiple)) * multiple


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
    with_layout: bool = True,
    stack: Any = None,  # llmplan.systems.stack.Stack of the layout search (None: the default)
) -> tuple[dict[str, Any], list[str], list[str]]:
    """One plan as a flat record, with the warnings and notes it should be read with.

    `hardware` is a llmplan.systems.budget.HardwareBudget. With `from_hardware_time` its FLOPs are the budget
    (and the plan's wall time is its calendar time); without, the question fixes the compute
    (--params with --tokens, --target-loss, ...) and the wall time follows from it. `gpu` is the GPU
    preset (board power, and the layout search). `auto_mfu` iterates the MFU to the fixed point of
    the throughput model (`solve_mfu`)."""
    notes: list[str] = []

    def build(mfu: float) -> tuple[dict[str, Any], list[str], Any]:
        return _record(law, hparams, hardware.with_mfu(mfu), params, tokens, target_loss, unique_tokens, inference_tokens,
                       seq, price, pue, gpu, from_hardware_time, with_layout or auto_mfu, stack)

    if auto_mfu:
        cache: dict[float, tuple] = {}

        def evaluate(m: float) -> float:
            cache[m] = build(m)
            record = cache[m][0]
            if record["step_seconds"] is None:
                raise WorkError(f"--mfu auto: {cache[m][1][-1] if cache[m][1] else 'no layout fits'}; give --mfu X")
            return utilisation(record["params"], record["global_batch_tokens"], record["step_seconds"], hardware.gpus, hardware.peak)

        mfu, history, remark = solve_mfu(evaluate, hardware.mfu)
        record, warnings, _ = cache[mfu] if mfu in cache else build(mfu)
        record["mfu_source"] = "auto"
        record["mfu_iterations"] = len(history)
        notes.append(describe_iterations(history))
        if remark:
            notes.append(remark)
    else:
        record, warnings, _ = build(hardware.mfu)
        record["mfu_source"] = "given"
        record["mfu_iterations"] = None
    return record, warnings, notes


def _record(law, hparams, hardware, params, tokens, target_loss, unique_tokens, inference_tokens, seq, price, pue, gpu, from_hardware_time, with_layout, stack=None):
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
    (shape,) = propose(N, n=1, context=seq)
    shape_params = arch.params(shape)
    non_embedding = arch.non_embedding_params(shape)

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
    steps = math.ceil(D / batch_run)

    # The layout `layout` would pick for this model on these GPUs, at this batch.
    fields = {k: None for k in ("tp", "pp", "vp", "dp", "cp", "ep", "zero", "micro_batch", "micro_batches", "recompute", "sequence_parallel",
                                "memory_per_gpu_bytes", "step_seconds", "layout_mfu", "layout_training_seconds")}
    if with_layout and gpu is not None:
        best, why = best_layout(shape, seq, global_batch, gpu, hardware.gpus, hardware.dtype, stack)
        if best is None:
            warnings.append(why)
        else:
            fields.update(best.layout.keys())
            fields["micro_batches"] = global_batch // (best.layout.dp * best.layout.micro_batch)
            fields["memory_per_gpu_bytes"] = round(best.memory.total_bytes)
            fields["step_seconds"] = float(best.step.step_seconds)
            fields["layout_mfu"] = float(best.step.mfu)
            fields["layout_training_seconds"] = steps * float(best.step.step_seconds)

    # Time: calendar time = C / (GPUs x peak x MFU x goodput); the budget from hardware time gives it back.
    training_seconds = C / (hardware.gpus * hardware.peak * hardware.mfu)
    wall = training_seconds / hardware.goodput
    gpu_hours = hardware.gpus * wall / 3600.0
    tdp_watts = gpu.get("tdp_watts") if gpu is not None else None

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
        "pue": pue,
        "energy_joules": None if tdp_watts is None else energy_joules(tdp_watts, hardware.gpus, wall, pue),
    }
    record["energy_kwh"] = None if record["energy_joules"] is None else record["energy_joules"] / JOULES_PER_KWH
    return record, warnings, shape


# Where each number comes from (`plan --explain`): key -> source.
SOURCES: dict[str, str] = {
    "flops": "GPUs x dense peak x MFU x calendar time x goodput (llmplan.systems.budget)",
    "params": "the law's compute-optimal split of the budget, C = 6ND",
    "tokens": "D = C / (6N)",
    "loss": "the law's L(N, D)",
    "shape_params": "a LLaMA-style shape for N (as `arch --target`), exact count",
    "batch_tokens": "the hyperparameter law's optimal batch (its own value; DeepSeek at C = M·D, M non-embedding FLOPs per token)",
    "learning_rate": "the hyperparameter law's optimal peak learning rate",
    "global_batch": "batch_tokens in whole sequences, a multiple of the data-parallel GPUs",
    "steps": "tokens / (global_batch x seq)",
    "mfu": "given with --mfu (default 0.4), or the throughput model's fixed point (--mfu auto)",
    "tp": "the fastest layout that fits (llmplan layout search) for this shape, batch and GPUs",
    "memory_per_gpu_bytes": "peak memory per GPU of that layout (llmplan memory)",
    "step_seconds": "the throughput model's step time for that layout",
    "layout_mfu": "that layout's MFU (PaLM App. B: attention matmuls counted)",
    "goodput": "--goodput; default 0.9, Llama 3 (Dubey et al. 2024 Sec. 3.3.4): more than 90% effective training time",
    "wall_seconds": "C / (GPUs x peak x MFU x goodput)",
    "gpu_hours": "GPUs x wall time",
    "cost_usd": "GPU-hours x --price",
    "energy_kwh": "board power (TDP, datasheet) x GPUs x wall time x PUE (default 1.1, Patterson et al. 2021 Table 4)",
}
