"""`llmplan compute`: training compute of a run, and what it means on real GPUs."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from llmplan.cli import model_options as mo
from llmplan.cli import options
from llmplan.cli.common import catalog, emit, note, output_format

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
    from llmplan.errors import InputError
    from llmplan.model.arch import FLOPS_PER_PARAM_PER_TOKEN
    from llmplan.units import PF_DAY, format_count, format_flops, parse_count, parse_positive

    fmt = output_format(fmt)
    from llmplan.dtypes import PEAK_DTYPES, canonical

    dtype = canonical(dtype, PEAK_DTYPES)  # fp8-e4m3, bfloat16, torch.float16 ... -> fp8, bf16, fp16
    if recompute not in FLOPS_PER_PARAM_PER_TOKEN:
        raise InputError(f"--recompute {recompute!r} is not one of {', '.join(FLOPS_PER_PARAM_PER_TOKEN)}")
    from llmplan.cli.options import hardware_title
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
        model = mo.resolve_model(**source, presets=presets, command="llmplan compute")
        for line in model.notes:
            note(line)
    from llmplan.planning.compute import compute_rows

    (row,) = compute_rows(params=N, tokens=D, model=model, seq=seq, flops_per_token=flops_per_token, recompute=recompute, budget=budget,
                          hardware=hardware, catalog=cat, gpu=gpu, gpus=gpus,
                          mfu=m, mfu_auto=auto, global_batch=global_batch, price=usd, dtype=dtype, goodput=g,
                          explain_default_mfu=fmt == "table" and mfu is None, say=note,
                          stack=options.load_stack(stack, presets) if auto else None)
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
    emit([row], fmt, title=title, columns=columns, labels=labels)
