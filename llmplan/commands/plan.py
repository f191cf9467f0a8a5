"""`llmplan plan` as a function: one complete plan of a training run from the hardware you have."""

from __future__ import annotations

from typing import Any, Optional

from llmplan.commands import args
from llmplan.commands.notes import note, warn
from llmplan.commands.result import Rows, command
from llmplan.errors import InputError


class Detail:
    """What the command line's table is drawn from: the record, the budget, the GPU, the PUE, the hyperparameter law."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


@command
def plan(
    *, gpu: Optional[str] = None, gpus: Any = None, days: Any = None, hours: Any = None, gpu_hours: Any = None, mfu: Any = None,
    goodput: Any = None, dtype: str = "bf16", law: Optional[str] = None, hparams: Optional[str] = None, params: Any = None,
    tokens: Any = None, unique_tokens: Any = None, inference_tokens: Any = None, target_loss: Any = None, seq: Any = 4096,
    kv_heads: Any = None, price: Any = None, pue: Any = None, explain: Any = False, stack: Optional[str] = None, presets: Any = None,
) -> Rows:
    """The whole plan of a training run (`llmplan plan`), one record: the budget that GPUs x time buy
    (gpu=, gpus=, days= or hours= or gpu_hours=, mfu=, goodput=), the law's compute-optimal size and tokens,
    the loss, a shape, batch size and learning rate, the fastest layout that fits, steps, wall time,
    GPU-hours, cost (price= USD per GPU-hour) and energy. params=, tokens= or target_loss= fix the compute
    instead of the time; explain=True only adds the table's "from" column on the command line.

    Example: llmplan.plan(gpu="h100", gpus=256, days=30)[0]["params"]
    """
    from llmplan.planning.plan import DEFAULT_PUE, plan_record
    from llmplan.presets import catalog
    from llmplan.scaling.hparams import load_hparams
    from llmplan.systems.budget import budget_from_seconds, hardware_budget, parse_goodput, parse_mfu, wants_hardware_budget
    from llmplan.units import parse_count, parse_positive

    gpus, seq, kv_heads = (args.integer(value, name) for value, name in ((gpus, "--gpus"), (seq, "--seq"), (kv_heads, "--kv-heads")))
    days, hours, gpu_hours, mfu, goodput, params, tokens, unique_tokens, inference_tokens, target_loss, price, pue = (
        args.text(v) for v in (days, hours, gpu_hours, mfu, goodput, params, tokens, unique_tokens, inference_tokens, target_loss, price, pue))
    explain = args.switch(explain, "--explain")
    for value, name in ((seq, "--seq"), (kv_heads, "--kv-heads")):  # the command line's min=1
        args.positive(value, name)
    cat = catalog(presets)
    if gpu is None:
        raise InputError("plan needs the hardware: --gpu (e.g. --gpu h100 --gpus 256 --days 30)")
    auto = mfu is None or mfu.strip().lower() == "auto"
    m = parse_mfu(None if auto else mfu)  # with auto, where the search starts (and the fallback where no layout fits)
    N = parse_count(params, "a parameter count") if params is not None else None
    D = parse_count(tokens, "a token count") if tokens is not None else None
    U = parse_count(unique_tokens, "a count of unique tokens") if unique_tokens is not None else None
    I = parse_count(inference_tokens, "a count of inference tokens") if inference_tokens is not None else None
    L = parse_positive(target_loss, "a target loss (nats per token, e.g. 2.0)") if target_loss is not None else None
    usd = parse_positive(price, "a price in USD per GPU-hour") if price is not None else None
    p = parse_positive(pue, "a PUE (1 or more, e.g. 1.1)") if pue is not None else DEFAULT_PUE
    if p < 1:
        raise InputError(f"--pue {pue} is below 1; a data centre uses at least the power of its GPUs (e.g. --pue 1.1)")
    if U is not None and I is not None:
        raise InputError("give --unique-tokens or --inference-tokens, not both")

    from_time = wants_hardware_budget(days, hours, gpu_hours)
    if from_time:
        if L is not None or (N is not None and D is not None):
            raise InputError("the hardware time fixes the budget; drop --days/--hours/--gpu-hours, or --target-loss / --params with --tokens")
        hardware = hardware_budget(cat, gpu, gpus, days, hours, gpu_hours, m, goodput, dtype)
    else:
        if L is None and N is None and D is None:
            raise InputError("give the hardware time (--days, --hours or --gpu-hours), or fix the compute with --target-loss, --params or --tokens")
        if gpus is None:
            raise InputError("--gpus is needed to turn the compute into wall time (e.g. --gpus 256)")
        # No time given: a placeholder of one second, only its GPUs, peak, MFU and goodput are used.
        from llmplan.dtypes import PEAK_DTYPES, canonical

        hardware = budget_from_seconds(cat.get("gpus", gpu), gpus, 1.0, None, m, parse_goodput(goodput), canonical(dtype, PEAK_DTYPES))

    if U is not None:
        from llmplan.scaling.data_constrained import CAVEAT, resolve_law

        chosen = resolve_law(law)
        note(CAVEAT)
    else:
        from llmplan.scaling.laws import resolve_laws

        if law is not None and law.strip().lower() == "all":
            raise InputError("plan takes one law; 'all' is for 'llmplan optimal'")
        chosen = resolve_laws(law, catalog(presets), None)[0]
    hp = load_hparams(hparams, cat)
    device = cat.get("gpus", gpu)
    record, warnings, notes = plan_record(
        chosen, hp, hardware, params=N, tokens=D, target_loss=L, unique_tokens=U, inference_tokens=I,
        seq=seq, price=usd, pue=p, gpu=device, from_hardware_time=from_time, auto_mfu=auto, strict_auto=mfu is not None,
        kv_heads=kv_heads, runs=cat.all("runs"), stack=args.load_stack(stack, presets),
    )
    for w in warnings:
        warn(w)
    for line in notes:
        note(line)
    if record["energy_basis"] is None:
        note(f"the catalog has no node or board power for {hardware.gpu}; energy is left out")
    return Rows([record], detail=Detail(record=record, hardware=hardware, from_time=from_time, device=device, pue=p,
                                        hparams=hp, explain=explain))
