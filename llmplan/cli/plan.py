"""`llmplan plan`: one complete plan of a training run from the hardware you have."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from llmplan.cli import options
from llmplan.cli.common import emit, note, output_format, say

app = typer.Typer()

SeqOption = options.seq_option("Training sequence length in tokens (default 4096).")
ParamsOption = options.params_option("Fix the model size (e.g. 7B): the tokens the budget buys, or without hardware time its compute-optimal tokens.")

# plan's own --mfu: by default the MFU of the fastest layout for the model the budget buys.
PlanMfuOption = Annotated[Optional[str], typer.Option("--mfu", help="Model FLOPs utilisation (6ND counted), a fraction of the dense peak. Default (or 'auto'): the MFU of the fastest layout that fits for the model the budget buys, so steps x step time is the time given; a number fixes the budget's MFU and a note says what the layout reaches.", show_default=False)]

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
        ("published_run", "published, nearest scale"),
        ("global_batch", "batch run, sequences"),
        ("global_batch_tokens", "batch run, tokens"),
        ("seq", "sequence length"),
        ("steps", "steps"),
    ]),
    ("hardware", [
        ("gpus", "GPUs"),
        ("peak_flops_per_second", "dense peak per GPU"),
        ("tp", "layout"),
        ("micro_batch", "micro-batch x count"),
        ("recompute", "recompute"),
        ("memory_per_gpu_bytes", "memory per GPU"),
        ("step_seconds", "step time"),
        ("mfu", "MFU (6ND)"),
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

    optional = {"published_run", "unique_tokens", "epochs", "inference_tokens", "cost_usd", "energy_kwh", "loss", "tp", "micro_batch", "recompute", "memory_per_gpu_bytes", "step_seconds"}
    rows = []
    for group, items in GROUPS:
        first = True
        for key, label in items:
            value = record.get(key)
            if value is None and key in optional:
                continue
            if key == "published_run":
                if not record.get("hparams_extrapolated"):
                    continue  # only where the law is extrapolated: its fitted range covers the plan otherwise
                lr = record.get("published_learning_rate")
                text = (f"{record['published_run_name']} ({humanize('flops', record['published_run_flops'])} FLOPs): batch up to "
                        f"{humanize('batch_tokens', record['published_batch_tokens'])} tokens" + (f", peak LR {lr:.1e}" if lr else ""))
            elif key == "shape_heads":
                text = f"{value} ({record['shape_kv_heads']})"
            elif key == "tp":
                r = record
                text = f"tp {r['tp']}, pp {r['pp']}" + (f" (vp {r['vp']})" if r["vp"] > 1 else "") + f", dp {r['dp']}"
                text += "".join(f", {k} {r[k]}" for k in ("cp", "ep") if r[k] > 1) + (f", ZeRO-{r['zero']}" if r["zero"] else "")
                text += ", SP" if r["sequence_parallel"] else ""
            elif key == "micro_batch":
                text = f"{value} x {record['micro_batches']}"
            elif key == "mfu":
                text = f"{value:.1%}" + {"layout": " (the layout's)", "given": " (given)", "default": " (default)"}.get(record.get("mfu_source"), "")
            elif key == "gpus":
                text = f"{value:,} x {record['gpu']} ({record['dtype']})"
            elif key == "energy_kwh":
                text = f"{value:,.0f}" + {"node": " (node power x PUE)", "board": " (GPU boards x PUE)"}.get(record.get("energy_basis"), "")
            elif key == "cost_usd":
                text = f"{value:,.0f}"
            elif key in ("learning_rate", "loss"):
                text = f"{value:.2e}" if key == "learning_rate" else f"{value:.3f}"
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
                    row["from"] = {"layout": SOURCES["mfu"], "given": "--mfu, the budget's; a note compares the layout's",
                                   "default": "0.4, as no layout fits (observed 0.3-0.55)"}.get(record.get("mfu_source"), SOURCES["mfu"])
            rows.append(row)
            first = False
    return rows


@app.command(help="""One complete plan of a training run from the hardware you have: what to train, how, and what it costs.

The budget is GPUs x dense peak x MFU x calendar time x goodput, so the plan takes exactly the
time given. Then the law's compute-optimal N and D (D = C / 6N), the predicted loss, a LLaMA-style
shape with its exact count (as `arch --target`), the batch size and peak learning rate of a
published hyperparameter law beside the whole-sequence batch that is run, the number of steps,
wall time, GPU-hours, cost at --price and energy (a node's rated power per GPU x GPUs x time x
PUE; the GPU board's power where the catalog has no node), and the
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
@options.grouped(hardware_time=options.with_option(options.with_option(options.HARDWARE_TIME, "gpu", options.PlanGpuOption), "mfu", PlanMfuOption))
def plan(
    hardware_time: options.Flags = None,
    law: options.LawOption = None,
    hparams: Annotated[Optional[str], typer.Option("--hparams", help="Hyperparameter law for batch size and learning rate: deepseek-2024 (default) or step-law-2025.", show_default=False)] = None,
    params: ParamsOption = None,
    tokens: options.FixTokensOption = None,
    unique_tokens: Annotated[Optional[str], typer.Option("--unique-tokens", "-U", help="Unique tokens available (e.g. 2T): repeat data under the data-constrained law muennighoff-2023.", show_default=False)] = None,
    inference_tokens: options.InferenceTokensOption = None,
    target_loss: Annotated[Optional[str], typer.Option("--target-loss", help="The least compute that reaches this loss; the wall time follows.", show_default=False)] = None,
    seq: SeqOption = 4096,
    kv_heads: Annotated[Optional[int], typer.Option("--kv-heads", help="KV heads of the proposed shape (default 8 from 1B parameters, as Llama 3; must divide the heads).", min=1, show_default=False)] = None,
    price: options.PriceOption = None,
    pue: Annotated[Optional[str], typer.Option("--pue", help="Power usage effectiveness of the data centre (default 1.1, Patterson et al. 2021).", show_default=False)] = None,
    explain: Annotated[bool, typer.Option("--explain", help="Add a column saying where each number comes from.")] = False,
    stack: options.StackOption = None,
    fmt: options.FormatOption = None,
    presets: options.PresetsOption = None,
) -> None:
    from llmplan.commands.budgets import hardware_title
    from llmplan.commands.plan import plan as compute

    fmt = output_format(fmt)
    rows = compute(**hardware_time, law=law, hparams=hparams, params=params, tokens=tokens, unique_tokens=unique_tokens,
                   inference_tokens=inference_tokens, target_loss=target_loss, seq=seq, kv_heads=kv_heads, price=price, pue=pue,
                   explain=explain, stack=stack, presets=presets)
    say(rows)
    if fmt != "table":
        emit(rows, fmt)
        return
    d = rows.detail
    record, from_time, device, p = d.record, d.from_time, d.device, d.pue
    hardware = d.hardware.with_mfu(record["mfu"])
    if from_time:
        title = f"Plan: {hardware_title(hardware)}"
    else:
        title = f"Plan: {hardware.gpus:,} x {hardware.gpu} at {hardware.mfu:.0%} MFU, {hardware.goodput:.0%} goodput"
    if record["energy_basis"] == "node":
        energy = (f"energy = node power per GPU ({record['node_watts_per_gpu']:,.0f} W: the {device.get('gpus_per_node')}-GPU system's rated "
                  f"maximum, not the {record['tdp_watts']:g} W board alone) x GPUs x wall time x PUE {p:g}, an upper bound")
    elif record["energy_basis"] == "board":
        energy = f"energy = GPU board power ({record['tdp_watts']:g} W; the catalog has no node power for it) x GPUs x wall time x PUE {p:g}: the GPUs alone"
    else:
        energy = None
    note(f"batch and learning rate: {d.hparams.name}" + (f"; {energy}" if energy else ""))
    columns = ["group", "quantity", "value"] + (["from"] if explain else [])
    emit(vertical_rows(record, explain), fmt, title=title, columns=columns, labels={"group": "", "from": "from"},
         priority=["value", "quantity", "from", "group"], wrap_first=True)
