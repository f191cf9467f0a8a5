"""`llmplan compute`: training compute of a run, and what it means on real GPUs."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from llmplan.cli import options
from llmplan.cli.common import emit, note, output_format, say

app = typer.Typer()

SeqOption = options.seq_option("Training sequence length for the attention term (default: the preset's pre-training context).")
TokensOption = options.tokens_option("Training tokens (e.g. 2T).")
ParamsOption = options.params_option("Parameters (e.g. 7B).")


@app.command(help="""Training compute (6·N·D FLOPs, PF-days) and, with --gpu, GPU-hours, wall time and cost.

With --preset (or --hf-config, --safetensors) a model's exact params, tokens and shape are used (its shape adds the attention term
12·L·d·s per token); --recompute full counts 8·N·D. Time = FLOPs / (GPUs · dense peak · MFU), MFU 0.4
unless --mfu says otherwise, and calendar time divides by the goodput (default 0.9) as the budget
multiplies by it. --budget X --gpu ID answers the reverse: what a budget costs in GPU time.
--gpu ID --gpus K --days T (or --hours, or --gpu-hours) gives the budget that hardware time buys:
GPUs x dense peak x MFU x time x goodput (default goodput 0.9), the budget `optimal` and `plan` use.

Examples:

  llmplan compute --params 175B --tokens 300B

  llmplan compute --params 7B --tokens 2T --gpu a100 --gpus 1024 --price 2.0

  llmplan compute --preset llama-65b --gpu a100 --gpus 2048

  llmplan compute --hf-config path/to/config.json --tokens 1T

  llmplan compute --budget 1pfd --gpu v100 --gpus 8 --mfu 1

  llmplan compute --gpu h100 --gpus 256 --days 30 --mfu 0.4   # the budget of a month on 256 H100s
""")
@options.grouped(source=options.COMPUTE_MODEL_SOURCE)
def compute(
    params: ParamsOption = None,
    tokens: TokensOption = None,
    budget: Annotated[Optional[str], typer.Option("--budget", "-b", help="A compute budget instead of N and D: FLOPs (1e24) or PF-days (3000pfd).", show_default=False)] = None,
    source: options.Flags = None,
    flops_per_token: Annotated[Optional[str], typer.Option("--flops-per-token", help="Override the training FLOPs per token (default 6·N, plus attention with a preset shape).", show_default=False)] = None,
    recompute: Annotated[str, typer.Option("--recompute", help="Activation recomputation: none (6·N·D) or full (8·N·D).")] = "none",
    seq: SeqOption = None,
    gpu: options.GpuOption = None,
    gpus: options.GpusOption = None,
    mfu: options.ComputeMfuOption = None,
    stack: options.StackOption = None,
    global_batch: Annotated[Optional[int], typer.Option("--global-batch", help="With --mfu auto: sequences per step for the layout search (default: about 4M tokens, a power of two in sequences).", min=1, show_default=False)] = None,
    dtype: options.PeakDtypeOption = "bf16",
    days: options.DaysOption = None,
    hours: options.HoursOption = None,
    gpu_hours: options.GpuHoursOption = None,
    goodput: options.GoodputOption = None,
    price: options.PriceOption = None,
    fmt: options.FormatOption = None,
    presets: options.PresetsOption = None,
) -> None:
    from llmplan.commands.budgets import hardware_title
    from llmplan.commands.compute import compute as compute_
    from llmplan.units import PF_DAY, format_count, format_flops

    fmt = output_format(fmt)
    rows = compute_(params, tokens=tokens, budget=budget, flops_per_token=flops_per_token, recompute=recompute, seq=seq, gpu=gpu,
                    gpus=gpus, mfu=mfu, stack=stack, global_batch=global_batch, dtype=dtype, days=days, hours=hours,
                    gpu_hours=gpu_hours, goodput=goodput, price=price, presets=presets, **source)
    say(rows)
    row, hardware = rows.detail
    if fmt == "table" and mfu is None and hardware is None and gpu is not None:
        note("MFU 0.4 is the default (observed 0.3-0.55 in published runs); set --mfu to change it")
    if hardware is not None:
        title = f"Compute: {hardware_title(hardware)}"
    elif budget is not None:
        from llmplan.io.render import humanize

        title = f"Compute: {humanize('pf_days', row['flops'] / PF_DAY)} PF-days = {format_flops(row['flops'])}"
    else:
        title = f"Compute: {format_count(row['params'])} params, {format_count(row['tokens'])} tokens"
    if hardware is None and gpu is not None:
        title += f"; {row['gpus']} x {row['gpu']}, {row['mfu']:.0%} MFU, {row['goodput']:.0%} goodput ({row['dtype']})"
    labels = {"pf_days": "PF-days", "flops_per_token": "FLOPs/token", "peak_flops_per_second": "peak FLOP/s", "gpu_hours": "GPU-hours", "wall_seconds": "wall time", "cost_usd": "cost (USD)", "price_usd_per_gpu_hour": "USD/GPU-h"}
    columns = list(row)
    if fmt == "table":  # the title carries GPU, count, dtype and MFU; keep the table narrow
        hidden = {"gpu", "gpus", "dtype", "peak_flops_per_second", "mfu", "goodput", "price_usd_per_gpu_hour"}
        if "params" in row and row["flops_per_token"] == 6.0 * row["params"]:
            hidden.add("flops_per_token")
        columns = [c for c in columns if c not in hidden]
    emit(rows, fmt, title=title, columns=columns, labels=labels)
