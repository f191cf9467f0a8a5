"""`llmplan compute`: training compute of a run, and what it means on real GPUs."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from llmplan.cli.common import FormatOption, PresetsOption, catalog, emit, note, output_format

app = typer.Typer()


@app.command(help="""Training compute (6·N·D FLOPs, PF-days) and, with --gpu, GPU-hours, wall time and cost.

With --preset a model's params, tokens and shape are used (its shape adds the attention term
12·L·d·s per token); --recompute full counts 8·N·D. Time = FLOPs / (GPUs · dense peak · MFU), MFU 0.4
unless --mfu says otherwise. --budget X --gpu ID answers the reverse: what a budget costs in GPU time.

Examples:

  llmplan compute --params 175B --tokens 300B

  llmplan compute --params 7B --tokens 2T --gpu a100 --gpus 1024 --price 2.0

  llmplan compute --preset llama-65b --gpu a100 --gpus 2048

  llmplan compute --budget 1pfd --gpu v100 --gpus 8 --mfu 1
""")
def compute(
    params: Annotated[Optional[str], typer.Option("--params", "-N", help="Parameters (e.g. 7B).", show_default=False)] = None,
    tokens: Annotated[Optional[str], typer.Option("--tokens", "-D", help="Training tokens (e.g. 2T).", show_default=False)] = None,
    budget: Annotated[Optional[str], typer.Option("--budget", "-b", help="A compute budget instead of N and D: FLOPs (1e24) or PF-days (3000pfd).", show_default=False)] = None,
    preset: Annotated[Optional[str], typer.Option("--preset", "-p", help="A model preset: its params, tokens and shape (attention term).", show_default=False)] = None,
    flops_per_token: Annotated[Optional[str], typer.Option("--flops-per-token", help="Override the training FLOPs per token (default 6·N, plus attention with a preset shape).", show_default=False)] = None,
    recompute: Annotated[str, typer.Option("--recompute", help="Activation recomputation: none (6·N·D) or full (8·N·D).")] = "none",
    seq: Annotated[Optional[int], typer.Option("--seq", help="Training sequence length for the attention term (default: the preset's pre-training context).", min=1, show_default=False)] = None,
    gpu: Annotated[Optional[str], typer.Option("--gpu", "-g", help="GPU from the catalog (llmplan gpus), e.g. a100, h100, v100.", show_default=False)] = None,
    gpus: Annotated[int, typer.Option("--gpus", "-k", help="Number of GPUs (wall time assumes perfect scaling).")] = 1,
    mfu: Annotated[str, typer.Option("--mfu", help="Model FLOPs utilisation, a fraction of the dense peak.")] = "0.4",
    dtype: Annotated[str, typer.Option("--dtype", help="Which peak to use: bf16 (fp16 on GPUs without bf16), fp16, tf32, fp32, fp8.")] = "bf16",
    price: Annotated[Optional[str], typer.Option("--price", help="Price in USD per GPU-hour; adds cost_usd.", show_default=False)] = None,
    fmt: FormatOption = None,
    presets: PresetsOption = None,
) -> None:
    from llmplan.errors import InputError
    from llmplan.hardware import RECOMPUTE, gpu_cost_fields
    from llmplan.hardware import flops_per_token as per_token_of
    from llmplan.units import PF_DAY, format_count, format_flops, parse_compute, parse_count, parse_positive

    fmt = output_format(fmt)
    if recompute not in RECOMPUTE:
        raise InputError(f"--recompute {recompute!r} is not one of {', '.join(RECOMPUTE)}")
    m = parse_positive(mfu, "an MFU (a fraction such as 0.4)")
    if m > 1:
        raise InputError(f"--mfu {mfu} is above 1; give a fraction of the peak, e.g. 0.4")
    if gpus < 1:
        raise InputError(f"--gpus must be at least 1, not {gpus}")
    usd = parse_positive(price, "a price in USD per GPU-hour") if price is not None else None
    cat = catalog(presets) if (preset is not None or gpu is not None) else None

    row: dict = {}
    N = parse_count(params, "a parameter count") if params is not None else None
    D = parse_count(tokens, "a token count") if tokens is not None else None
    shape = {}
    if preset is not None:
        model = cat.get("models", preset)
        row["model"] = model.id
        if N is None:
            from llmplan.presets import model_params

            N, row["nominal_params"] = model_params(model)
        if D is None:
            D = model.get("tokens")
            if D is None:
                raise InputError(f"model {model.id!r} has no training tokens in the presets; give --tokens")
        # Attention is paid at the sequence length of pre-training, not a later long-context extension.
        # A preset that records no train_context falls back to its context, and says so.
        context = seq or model.get("train_context") or model.get("context")
        if seq is None and not model.get("train_context") and model.get("context") and model.get("layers"):
            note(f"model {model.id} records no pre-training context (train_context): the attention term uses its context, {model['context']:,} tokens; set --seq if it was pre-trained shorter")
        shape = {"layers": model.get("layers") or model.get("decoder_layers"), "d_model": model.get("d_model"), "context": context}
        if context and shape["layers"] and shape["d_model"]:
            row["seq"] = context
    elif seq is not None:
        raise InputError("--seq sets the attention term of a --preset shape; give --preset too, or --flops-per-token")
    if budget is not None:
        if N is not None or D is not None or preset is not None or flops_per_token is not None:
            raise InputError("--budget replaces --params/--tokens/--preset; give one or the other")
        C = parse_compute(budget)
        title = f"Compute: {C / PF_DAY:,.4g} PF-days = {format_flops(C)}"
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
    if gpu is not None:
        device = cat.get("gpus", gpu)
        row.update(gpu_cost_fields(C, device, gpus, m, dtype.lower(), usd))
        used = row["dtype"]
        title += f"; {gpus} x {device.id}, {m:.0%} MFU ({used})"
        if fmt == "table" and mfu == "0.4":
            note("MFU 0.4 is the default (observed 0.3-0.55 in published runs); set --mfu to change it")
    elif usd is not None:
        raise InputError("--price needs --gpu (the price is per GPU-hour)")
    from llmplan.plan import checked

    checked([row])
    labels = {"pf_days": "PF-days", "flops_per_token": "FLOPs/token", "peak_flops_per_second": "peak FLOP/s", "gpu_hours": "GPU-hours", "wall_seconds": "wall time", "cost_usd": "cost (USD)", "price_usd_per_gpu_hour": "USD/GPU-h"}
    columns = list(row)
    if fmt == "table":  # the title carries GPU, count, dtype and MFU; keep the table narrow
        hidden = {"gpu", "gpus", "dtype", "peak_flops_per_second", "mfu", "price_usd_per_gpu_hour"}
        if "params" in row and row["flops_per_token"] == 6.0 * row["params"]:
            hidden.add("flops_per_token")
        columns = [c for c in columns if c not in hidden]
        if "cost_usd" in row:
            row = {**row, "cost_usd": f"{row['cost_usd']:,.0f}"}
    emit([row], fmt, title=title, columns=columns, labels=labels)
