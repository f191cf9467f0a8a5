"""`llmplan plan`: one complete plan of a training run from the hardware you have."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from llmplan.cli import options
from llmplan.cli.common import catalog, emit, note, output_format, warn

app = typer.Typer()

# The vertical table: (group, key, label). A plan is one record; the table reads top to bottom.
GROUPS: list[tuple[str, list[tuple[str, str]]]] = [
    ("model", [
        ("law", "scaling law"),
        ("params", "parameters (N)"),
        ("loss", "predicted loss"),
        ("shape_layers", "layers"),
        ("shape_d_model", "d_model"),
        ("shape_heads", "heads (kv)"),
        ("shape_ffn", "ffn"),
        ("shape_params", "shape parameters"),
    ]),
    ("data", [
        ("tokens", "tokens (D)"),
        ("tokens_per_param", "tokens per parameter"),
        ("unique_tokens", "unique tokens"),
        ("epochs", "epochs"),
        ("inference_tokens", "inference tokens"),
    ]),
    ("optimisation", [
        ("hparams", "hyperparameter law"),
        ("batch_tokens", "batch (law), tokens"),
        ("learning_rate", "peak learning rate"),
        ("global_batch", "batch run, sequences"),
        ("global_batch_tokens", "batch run, tokens"),
        ("seq", "sequence length"),
        ("steps", "steps"),
    ]),
    ("hardware", [
        ("gpus", "GPUs"),
        ("peak_flops_per_second", "dense peak per GPU"),
        ("mfu", "MFU (budget)"),
        ("tp", "layout"),
        ("micro_batch", "micro-batch x count"),
        ("recompute", "recompute"),
        ("memory_per_gpu_bytes", "memory per GPU"),
        ("step_seconds", "step time"),
        ("layout_mfu", "MFU (layout)"),
    ]),
    ("time and money", [
        ("flops", "compute, FLOPs"),
        ("pf_days", "compute, PF-days"),
        ("goodput", "goodput"),
        ("wall_seconds", "wall time"),
        ("gpu_hours", "GPU-hours"),
        ("cost_usd", "cost, USD"),
        ("energy_kwh", "energy, kWh"),
    ]),
]


def vertical_rows(record: dict[str, Any], explain: bool = False) -> list[dict[str, str]]:
    """The record as (group, quantity, value[, from]) rows for the table; optional keys left out when null."""
    from llmplan.io.render import humanize
    from llmplan.planning.plan import SOURCES

    optional = {"unique_tokens", "epochs", "inference_tokens", "cost_usd", "energy_kwh", "loss", "tp", "micro_batch", "recompute", "memory_per_gpu_bytes", "step_seconds", "layout_mfu"}
    rows = []
    for group, items in GROUPS:
        first = True
        for key, label in items:
            value = record.get(key)
            if value is None and key in optional:
                continue
            if key == "shape_heads":
                text = f"{value} ({record['shape_kv_heads']})"
            elif key == "tp":
                r = record
                text = f"tp {r['tp']}, pp {r['pp']}" + (f" (vp {r['vp']})" if r["vp"] > 1 else "") + f", dp {r['dp']}"
                text += "".join(f", {k} {r[k]}" for k in ("cp", "ep") if r[k] > 1) + (f", ZeRO-{r['zero']}" if r["zero"] else "")
                text += ", SP" if r["sequence_parallel"] else ""
            elif key == "micro_batch":
                text = f"{value} x {record['micro_batches']}"
            elif key == "mfu" and record.get("mfu_source") == "auto":
                text = f"{value:.1%} (auto, {record['mfu_iterations']} evaluations)"
            elif key == "gpus":
                text = f"{value:,} x {record['gpu']} ({record['dtype']})"
            elif key in ("cost_usd", "energy_kwh"):
                text = f"{value:,.0f}"
            elif key in ("learning_rate", "loss"):
                text = f"{value:.2e}" if key == "learning_rate" else f"{value:.3f}"
            elif key == "layout_mfu":
                text = f"{value:.1%}"
            elif key == "peak_flops_per_second":
                text = f"{value / 1e12:,.1f} TFLOP/s"
            elif key == "goodput":
                text = f"{value:.0%}"
            else:
                text = humanize(key, value)
            row = {"group": group if first else "", "quantity": label, "value": text}
            if explain:
                row["from"] = SOURCES.get(key, "")
                if key == "mfu":
                    row["from"] = "the throughput model's fixed point (--mfu auto)" if record.get("mfu_source") == "auto" else "--mfu (default 0.4, observed 0.3-0.55)"
            rows.append(row)
            first = False
    return rows


@app.command(help="""One complete plan of a training run from the hardware you have: what to train, how, and what it costs.

The budget is GPUs x dense peak x MFU x calendar time x goodput, so the plan takes exactly the
time given. Then the law's compute-optimal N and D (D = C / 6N), the predicted loss, a LLaMA-style
shape with its exact count (as `arch --target`), the batch size and peak learning rate of a
published hyperparameter law beside the whole-sequence batch that is run, the number of steps,
wall time, GPU-hours, cost at --price and energy (board power x GPUs x time x PUE), and the
fastest layout that fits (as `layout` ranks them) with its memory per GPU, step time and MFU.
--mfu auto iterates the MFU to the throughput model's value for the model it buys (a fixed point;
exit 1 if it does not converge).
--params, --tokens and --target-loss fix the compute instead of the hardware time; then the wall
time follows from it. --format json gives one record (keys in docs/schema.md).

Examples:

  llmplan plan --gpu h100 --gpus 256 --days 30

  llmplan plan --gpu h100 --gpus 256 --days 30 --mfu 0.35 --price 2.5 --explain

  llmplan plan --gpu h100 --gpus 256 --days 30 --mfu auto   # MFU from the throughput model

  llmplan plan --gpu a100 --gpu-hours 184k --law chinchilla --hparams step-law

  llmplan plan --gpu h100 --gpus 512 --target-loss 2.0 -f json

  llmplan plan --gpu h100 --gpus 1024 --days 60 --unique-tokens 2T
""")
@options.grouped(hardware_time=options.with_option(options.HARDWARE_TIME, "gpu", options.PlanGpuOption))
def plan(
    hardware_time: options.Flags = None,
    law: options.LawOption = None,
    hparams: Annotated[Optional[str], typer.Option("--hparams", help="Hyperparameter law for batch size and learning rate: deepseek-2024 (default) or step-law-2025.", show_default=False)] = None,
    params: Annotated[Optional[str], typer.Option("--params", "-N", help="Fix the model size (e.g. 7B): the tokens the budget buys, or without hardware time its compute-optimal tokens.", show_default=False)] = None,
    tokens: options.FixTokensOption = None,
    unique_tokens: Annotated[Optional[str], typer.Option("--unique-tokens", "-U", help="Unique tokens available (e.g. 2T): repeat data under the data-constrained law muennighoff-2023.", show_default=False)] = None,
    inference_tokens: options.InferenceTokensOption = None,
    target_loss: Annotated[Optional[str], typer.Option("--target-loss", help="The least compute that reaches this loss; the wall time follows.", show_default=False)] = None,
    seq: Annotated[int, typer.Option("--seq", help="Training sequence length (tokens).", min=1)] = 4096,
    price: options.PriceOption = None,
    pue: Annotated[Optional[str], typer.Option("--pue", help="Power usage effectiveness of the data centre (default 1.1, Patterson et al. 2021).", show_default=False)] = None,
    explain: Annotated[bool, typer.Option("--explain", help="Add a column saying where each number comes from.")] = False,
    stack: options.StackOption = None,
    fmt: options.FormatOption = None,
    presets: options.PresetsOption = None,
) -> None:
    gpu, gpus, days, hours, gpu_hours, mfu, goodput, dtype = (hardware_time[k] for k in ("gpu", "gpus", "days", "hours", "gpu_hours", "mfu", "goodput", "dtype"))
    from llmplan.cli.options import hardware_title
    from llmplan.systems.budget import budget_from_seconds, hardware_budget, parse_goodput, parse_mfu, wants_hardware_budget
    from llmplan.errors import InputError
    from llmplan.scaling.hparams import load_hparams
    from llmplan.planning.plan import DEFAULT_PUE, plan_record
    from llmplan.units import parse_count, parse_positive

    fmt = output_format(fmt)
    cat = catalog(presets)
    if gpu is None:
        raise InputError("plan needs the hardware: --gpu (e.g. --gpu h100 --gpus 256 --days 30)")
    auto = mfu is not None and mfu.strip().lower() == "auto"
    m = parse_mfu(None if auto else mfu)
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
    tdp = device.get("tdp_watts")
    record, warnings, notes = plan_record(
        chosen, hp, hardware, params=N, tokens=D, target_loss=L, unique_tokens=U, inference_tokens=I,
        seq=seq, price=usd, pue=p, gpu=device, from_hardware_time=from_time, auto_mfu=auto,
        stack=options.load_stack(stack, presets),
    )
    for w in warnings:
        warn(w)
    for line in notes:
        note(line)
    if tdp is None:
        note(f"the catalog has no board power (tdp_watts) for {hardware.gpu}; energy is left out")
    if fmt != "table":
        emit([record], fmt)
        return
    hardware = hardware.with_mfu(record["mfu"])
    if from_time:
        title = f"Plan: {hardware_title(hardware)}"
    else:
        title = f"Plan: {hardware.gpus:,} x {hardware.gpu} at {hardware.mfu:.0%} MFU, {hardware.goodput:.0%} goodput"
    if mfu is None:
        note("MFU 0.4 is the default (observed 0.3-0.55 in published runs); set --mfu to change it")
    note(f"batch and learning rate: {hp.name}; energy = TDP x GPUs x wall time x PUE {p:g}, an upper bound")
    columns = ["group", "quantity", "value"] + (["from"] if explain else [])
    emit(vertical_rows(record, explain), fmt, title=title, columns=columns, labels={"group": "", "from": "from"})
