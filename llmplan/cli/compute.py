"""`llmplan compute`: training compute of a run, and what it means on real GPUs."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from llmplan.cli import model_options as mo
from llmplan.cli import options
from llmplan.cli.common import catalog, emit, note, output_format

app = typer.Typer()


@app.command(help="""Training compute (6·N·D FLOPs, PF-days) and, with --gpu, GPU-hours, wall time and cost.

With --preset (or --hf-config, --safetensors) a model's exact params, tokens and shape are used (its shape adds the attention term
12·L·d·s per token); --recompute full counts 8·N·D. Time = FLOPs / (GPUs · dense peak · MFU), MFU 0.4
unless --mfu says otherwise. --budget X --gpu ID answers the reverse: what a budget costs in GPU time.
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
    params: Annotated[Optional[str], typer.Option("--params", "-N", help="Parameters (e.g. 7B).", show_default=False)] = None,
    tokens: Annotated[Optional[str], typer.Option("--tokens", "-D", help="Training tokens (e.g. 2T).", show_default=False)] = None,
    budget: Annotated[Optional[str], typer.Option("--budget", "-b", help="A compute budget instead of N and D: FLOPs (1e24) or PF-days (3000pfd).", show_default=False)] = None,
    source: options.Flags = None,
    flops_per_token: Annotated[Optional[str], typer.Option("--flops-per-token", help="Override the training FLOPs per token (default 6·N, plus attention with a preset shape).", show_default=False)] = None,
    recompute: Annotated[str, typer.Option("--recompute", help="Activation recomputation: none (6·N·D) or full (8·N·D).")] = "none",
    seq: Annotated[Optional[int], typer.Option("--seq", help="Training sequence length for the attention term (default: the preset's pre-training context).", min=1, show_default=False)] = None,
    gpu: options.GpuOption = None,
    gpus: options.GpusOption = None,
    mfu: options.ComputeMfuOption = None,
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
    from llmplan.systems.hardware import RECOMPUTE, gpu_cost_fields
    from llmplan.systems.hardware import flops_per_token as per_token_of
    from llmplan.units import PF_DAY, format_count, format_flops, parse_compute, parse_count, parse_positive

    fmt = output_format(fmt)
    from llmplan.dtypes import PEAK_DTYPES, canonical

    dtype = canonical(dtype, PEAK_DTYPES)  # fp8-e4m3, bfloat16, torch.float16 ... -> fp8, bf16, fp16
    if recompute not in RECOMPUTE:
        raise InputError(f"--recompute {recompute!r} is not one of {', '.join(RECOMPUTE)}")
    from llmplan.cli.options import hardware_budget, hardware_title, parse_mfu

    auto = mfu is not None and mfu.strip().lower() == "auto"
    if auto and gpu is None:
        raise InputError("--mfu auto predicts the MFU on a GPU: add --gpu ID (and --gpus N)")
    if auto and (days is not None or hours is not None or gpu_hours is not None):
        raise InputError("compute --mfu auto predicts the MFU of a given model; for the model a hardware budget buys use 'llmplan plan --mfu auto' or 'llmplan optimal --mfu auto'")
    if global_batch is not None and not auto:
        raise InputError("--global-batch sizes the layout search of --mfu auto; add --mfu auto or drop it")
    m = parse_mfu(None if auto else mfu)
    if gpus is not None and gpus < 1:
        raise InputError(f"--gpus must be at least 1, not {gpus}")
    usd = parse_positive(price, "a price in USD per GPU-hour") if price is not None else None
    cat = catalog(presets) if gpu is not None else None
    hardware = hardware_budget(cat, gpu, gpus, days, hours, gpu_hours, m, goodput, dtype)
    gpus = gpus or 1

    row: dict = {}
    N = parse_count(params, "a parameter count") if params is not None else None
    D = parse_count(tokens, "a token count") if tokens is not None else None
    shape = {}
    if any(value is not None for value in source.values()):
        model = mo.resolve_model(**source, presets=presets, command="llmplan compute")
        for line in model.notes:
            note(line)
        row["model"] = model.name
        if N is None:
            N = model.active_params  # the exact count wherever a shape is known
            row["nominal_params"] = model.published_active_params or model.published_params
        if D is None:
            D = model.tokens
            if D is None:
                where = " in the presets" if model.preset is not None else ""
                raise InputError(f"model {model.name!r} has no training tokens{where}; give --tokens")
        # Attention is paid at the sequence length of pre-training, not a later long-context extension.
        s, p = model.shape, model.preset
        layers = (s.layers or s.decoder_layers) if s is not None else (p.get("layers") or p.get("decoder_layers") if p is not None else None)
        d_model = s.d_model if s is not None else (p.get("d_model") if p is not None else None)
        context = seq or model.train_context
        # A preset that records no train_context falls back to its context, and says so.
        if seq is None and p is not None and not p.get("train_context") and p.get("context") and layers:
            note(f"model {model.name} records no pre-training context (train_context): the attention term uses its context, {p['context']:,} tokens; set --seq if it was pre-trained shorter")
        shape = {"layers": layers, "d_model": d_model, "context": context}
        if context and layers and d_model:
            row["seq"] = context
    elif seq is not None:
        raise InputError("--seq sets the attention term of a model's shape; give --preset, --hf-config or --safetensors too, or --flops-per-token")
    if hardware is not None:  # the budget that hardware time buys
        if budget is not None or N is not None or D is not None or row.get("model") is not None or flops_per_token is not None:
            raise InputError("hardware time (--days, --hours, --gpu-hours) is the budget; drop --budget, --params, --tokens and the model")
        C = hardware.flops
        title = f"Compute: {hardware_title(hardware)}"
    elif budget is not None:
        if N is not None or D is not None or row.get("model") is not None or flops_per_token is not None:
            raise InputError("--budget replaces --params/--tokens/--preset/--hf-config/--safetensors; give one or the other")
        C = parse_compute(budget)
        from llmplan.io.render import humanize

        title = f"Compute: {humanize('pf_days', C / PF_DAY)} PF-days = {format_flops(C)}"
    else:
        if N is None or D is None:
            raise InputError("give --params N and --tokens D (e.g. --params 7B --tokens 2T), --preset ID, or --budget X")
        if flops_per_token is not None:
            per_token = parse_positive(flops_per_token, "a number of FLOPs per token (e.g. 4.2e10)")
            if recompute != "none":
                raise InputError("--flops-per-token already fixes the count; drop --recompute")
        else:
            per_token = per_token_of(N, recompute=recompute, **shape)
        C = per_token * D
        row.update({"params": N, "tokens": D, "flops_per_token": per_token})
        title = f"Compute: {format_count(N)} params, {format_count(D)} tokens"
    row["flops"] = C
    row["pf_days"] = C / PF_DAY
    if hardware is not None:
        row.update(hardware.fields())
        if usd is not None:
            row["price_usd_per_gpu_hour"] = usd
            row["cost_usd"] = hardware.gpu_hours * usd
    elif gpu is not None:
        device = cat.get("gpus", gpu)
        if auto:
            m = _auto_mfu(model if row.get("model") else None, device, gpus, dtype.lower(), seq, global_batch)
        row.update(gpu_cost_fields(C, device, gpus, m, dtype.lower(), usd))
        used = row["dtype"]
        title += f"; {gpus} x {device.id}, {m:.0%} MFU ({used})"
        if fmt == "table" and mfu is None:
            note("MFU 0.4 is the default (observed 0.3-0.55 in published runs); set --mfu to change it")
    elif usd is not None:
        raise InputError("--price needs --gpu (the price is per GPU-hour)")
    from llmplan.scaling.optimal import checked

    checked([row])
    labels = {"pf_days": "PF-days", "flops_per_token": "FLOPs/token", "peak_flops_per_second": "peak FLOP/s", "gpu_hours": "GPU-hours", "wall_seconds": "wall time", "cost_usd": "cost (USD)", "price_usd_per_gpu_hour": "USD/GPU-h"}
    columns = list(row)
    if fmt == "table":  # the title carries GPU, count, dtype and MFU; keep the table narrow
        hidden = {"gpu", "gpus", "dtype", "peak_flops_per_second", "mfu", "goodput", "price_usd_per_gpu_hour"}
        if "params" in row and row["flops_per_token"] == 6.0 * row["params"]:
            hidden.add("flops_per_token")
        columns = [c for c in columns if c not in hidden]
    emit([row], fmt, title=title, columns=columns, labels=labels)


def _auto_mfu(model, device, gpus: int, dtype: str, seq, global_batch) -> float:
    """The predicted MFU of the fastest layout that fits (llmplan.systems.layout_search.search), said in a note."""
    from llmplan.cli.common import note
    from llmplan.errors import InputError
    from llmplan.systems.layout_search import describe, search
    from llmplan.systems.step_time import Cluster, Run

    if model is None or model.shape is None or model.shape.family != "decoder":
        raise InputError("--mfu auto needs a decoder model's shape: give --preset, --hf-config or --safetensors with a config.json")
    shape = model.shape
    seq = seq or model.train_context or shape.context
    if dtype not in ("bf16", "fp16", "fp8"):
        raise InputError(f"--mfu auto models bf16, fp16 or fp8 training, not --dtype {dtype}")
    if global_batch is None:  # about 4M tokens per step (Llama 2: 4M; GPT-3 175B: 3.2M), a power of two in sequences
        global_batch = 1 << max(0, (-(-4_000_000 // seq) - 1).bit_length())
    cluster = Cluster.from_preset(device, dtype)
    cluster.require_links(gpus)
    result = search(shape, Run(seq=seq, global_batch=global_batch), cluster, gpus, top=1, dtype=dtype)
    if not result.best:
        raise InputError(f"--mfu auto: no layout of {gpus} x {device.id} fits {shape.name or model.name} at --seq {seq}; "
                         f"see 'llmplan layout' for what would, or give --mfu")
    best = result.best[0]
    note(f"MFU {best.step.mfu:.1%} is predicted for the fastest layout that fits ({describe(best.layout)}; "
         f"{global_batch} x {seq} tokens per step), not the 0.4 default: an upper end, the model leaves out framework overheads; "
         f"'llmplan layout' shows the breakdown")
    return best.step.mfu
