"""`llmplan compute` as a function: training compute of a run, and what it means on real GPUs."""

from __future__ import annotations

from typing import Any

from llmplan.commands import args
from llmplan.commands.budgets import hardware_texts
from llmplan.commands.notes import note
from llmplan.commands.result import Rows, command
from llmplan.errors import InputError

SOURCES = ("preset", "hf", "hf_config", "safetensors")  # compute's model options: a model's source, no shape flags


@command
def compute(
    params: Any = None, *, tokens: Any = None, budget: Any = None, flops_per_token: Any = None, recompute: str = "none",
    seq: Any = None, gpu: Any = None, gpus: Any = None, mfu: Any = None, stack: Any = None, global_batch: Any = None,
    dtype: Any = "bf16", days: Any = None, hours: Any = None, gpu_hours: Any = None, goodput: Any = None, price: Any = None,
    presets: Any = None, **model_options: Any,
) -> Rows:
    """Training compute (`llmplan compute`): 6·N·D FLOPs and PF-days of `params` and `tokens` (or of a
    model: preset=, hf=, hf_config=, safetensors=, whose shape adds the attention term), or of a `budget`;
    with `gpu` (and `gpus`, `mfu`, `price`) the GPU-hours, wall time and cost; with hardware time (gpu,
    gpus, days or hours, or gpu_hours) the budget it buys. One row. `detail` is (the row as computed,
    before counts are made whole; the hardware budget or None).

    Example: llmplan.compute(params="7B", tokens="2T", gpu="h100", gpus=64)[0]["gpu_hours"]
    """
    source, shape_flags = args.model_options(model_options, "compute")
    given = [name for name, value in shape_flags.items() if value is not None]
    if given:
        raise InputError(f"llmplan compute has no option {given[0]!r}; its model options: {', '.join(SOURCES)}")
    from llmplan.dtypes import PEAK_DTYPES, canonical
    from llmplan.model.arch import FLOPS_PER_PARAM_PER_TOKEN
    from llmplan.presets import catalog
    from llmplan.units import parse_count, parse_positive

    gpu, gpus, days, hours, gpu_hours, mfu, goodput, dtype = hardware_texts(gpu, gpus, days, hours, gpu_hours, mfu, goodput, dtype)
    seq, global_batch = args.integer(seq, "--seq"), args.integer(global_batch, "--global-batch")
    args.positive(seq, "--seq")
    args.positive(global_batch, "--global-batch")
    params, tokens, budget, flops_per_token, price = (args.text(v) for v in (params, tokens, budget, flops_per_token, price))
    dtype = canonical(dtype, PEAK_DTYPES)  # fp8-e4m3, bfloat16, torch.float16 ... -> fp8, bf16, fp16
    if recompute not in FLOPS_PER_PARAM_PER_TOKEN:
        raise InputError(f"--recompute {recompute!r} is not one of {', '.join(FLOPS_PER_PARAM_PER_TOKEN)}")
    from llmplan.systems.budget import hardware_budget, parse_mfu

    auto = mfu is not None and mfu.strip().lower() == "auto"
    if auto and gpu is None:
        raise InputError("--mfu auto predicts the MFU on a GPU: add --gpu ID (and --gpus N)")
    if auto and (days is not None or hours is not None or gpu_hours is not None):
        raise InputError("compute --mfu auto predicts the MFU of a given model; for the model a hardware budget buys use 'llmplan plan --mfu auto' or 'llmplan optimal --mfu auto'")
    if global_batch is not None and not auto:
        raise InputError("--global-batch sizes the layout search of --mfu auto; add --mfu auto or drop it")
    if stack is not None and not auto:
        raise InputError("--stack sets the software of the --mfu auto layout search; add --mfu auto or drop --stack")
    m = parse_mfu(None if auto else mfu)
    if gpus is not None and gpus < 1:
        raise InputError(f"--gpus must be at least 1, not {gpus}")
    usd = parse_positive(price, "a price in USD per GPU-hour") if price is not None else None
    cat = catalog(presets) if gpu is not None else None
    from llmplan.systems.budget import parse_goodput, wants_hardware_budget

    timed = wants_hardware_budget(days, hours, gpu_hours)
    hardware = hardware_budget(cat, gpu, gpus, days, hours, gpu_hours, m, goodput if timed else None, dtype)
    g = parse_goodput(goodput) if goodput is not None and not timed else None
    gpus = gpus or 1

    N = parse_count(params, "a parameter count") if params is not None else None
    D = parse_count(tokens, "a token count") if tokens is not None else None
    model = None
    if any(value is not None for value in source.values()):
        from llmplan.model.source import resolve_model

        model = resolve_model(**source, presets=presets, command="llmplan compute")
        for line in model.notes:
            note(line)
    from llmplan.planning.compute import compute_rows

    # The default MFU's note is for a reader of the table: the command line says it (never in a machine format).
    (row,) = compute_rows(params=N, tokens=D, model=model, seq=seq, flops_per_token=flops_per_token, recompute=recompute, budget=budget,
                          hardware=hardware, catalog=cat, gpu=gpu, gpus=gpus,
                          mfu=m, mfu_auto=auto, global_batch=global_batch, price=usd, dtype=dtype, goodput=g, say=note,
                          stack=args.load_stack(stack, presets) if auto else None)
    return Rows([row], detail=(row, hardware))
