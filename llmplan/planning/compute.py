"""The row of `llmplan compute`: training FLOPs of a run and what they mean on real GPUs.

Three questions give the FLOPs: hardware time (the budget it buys, llmplan.systems.budget), a budget
given outright, or a model's N and D (6·N·D, with a shape the attention term 12·L·d·s per token, 8·N·D
with full recomputation: llmplan.model.arch.training_flops_per_token). With a GPU and no hardware time,
the GPU-hours, wall time and cost of those FLOPs at an MFU, given or predicted (llmplan.systems.mfu), and
a goodput: calendar time = FLOPs / (GPUs x peak x MFU x goodput), the inverse of the budget hardware time buys.
"""

from __future__ import annotations

from typing import Any, Callable

from llmplan.errors import InputError


def compute_rows(*, params: float | None, tokens: float | None, model: Any = None, seq: int | None = None,
                 flops_per_token: str | None = None, recompute: str = "none", budget: str | None = None,
                 hardware: Any = None, catalog: Any = None, gpu: str | None = None, gpus: int = 1, mfu: float, mfu_auto: bool = False,
                 global_batch: int | None = None, price: float | None = None, dtype: str = "bf16", goodput: float | None = None,
                 explain_default_mfu: bool = False, say: Callable[[str], None] = lambda line: None, stack: Any = None) -> list[dict[str, Any]]:
    """One row: the FLOPs (and PF-days) of the question, and with `gpu` (an id in `catalog`) and no hardware
    time, what they cost on `gpus` of it at `mfu` (or, with `mfu_auto`, at the MFU of the fastest layout).

    `params` and `tokens` are parsed counts or None; `model` a resolved model (name, shape, preset, exact
    counts, tokens) or None; `budget` and `flops_per_token` the option texts, parsed where their rules are
    checked. `say` receives each note as it arises (so one printed at once comes before a later error)."""
    from llmplan.model.arch import training_flops_per_token
    from llmplan.rows import checked
    from llmplan.systems.budget import gpu_cost_fields
    from llmplan.units import PF_DAY, parse_compute, parse_positive

    row: dict[str, Any] = {}
    N, D = params, tokens
    shape = {}
    if model is not None:
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
            say(f"model {model.name} records no pre-training context (train_context): the attention term uses its context, {p['context']:,} tokens; set --seq if it was pre-trained shorter")
        shape = {"layers": layers, "d_model": d_model, "context": context}
        if context and layers and d_model:
            row["seq"] = context
    elif seq is not None:
        raise InputError("--seq sets the attention term of a model's shape; give --preset, --hf-config or --safetensors too, or --flops-per-token")
    if hardware is not None:  # the budget that hardware time buys
        if budget is not None or N is not None or D is not None or row.get("model") is not None or flops_per_token is not None:
            raise InputError("hardware time (--days, --hours, --gpu-hours) is the budget; drop --budget, --params, --tokens and the model")
        C = hardware.flops
    elif budget is not None:
        if N is not None or D is not None or row.get("model") is not None or flops_per_token is not None:
            raise InputError("--budget replaces --params/--tokens/--preset/--hf-config/--safetensors; give one or the other")
        C = parse_compute(budget)
    else:
        if N is None or D is None:
            raise InputError("give --params N and --tokens D (e.g. --params 7B --tokens 2T), --preset ID, or --budget X")
        if flops_per_token is not None:
            per_token = parse_positive(flops_per_token, "a number of FLOPs per token (e.g. 4.2e10)")
            if recompute != "none":
                raise InputError("--flops-per-token already fixes the count; drop --recompute")
        else:
            per_token = training_flops_per_token(N, recompute=recompute, **shape)
        C = per_token * D
        row.update({"params": N, "tokens": D, "flops_per_token": per_token})
    row["flops"] = C
    row["pf_days"] = C / PF_DAY
    if hardware is not None:
        row.update(hardware.fields())
        if price is not None:
            row["price_usd_per_gpu_hour"] = price
            row["cost_usd"] = hardware.gpu_hours * price
    elif gpu is not None:
        device = catalog.get("gpus", gpu)
        if mfu_auto:
            from llmplan.systems.mfu import auto_mfu

            chosen = model if row.get("model") else None
            mfu, said = auto_mfu(chosen.shape if chosen is not None else None, device, gpus, dtype.lower(), seq=seq,
                                 train_context=chosen.train_context if chosen is not None else None,
                                 global_batch=global_batch, name=chosen.name if chosen is not None else None, stack=stack)
            say(said)
        from llmplan.systems.budget import DEFAULT_GOODPUT

        # Calendar time, as hardware time turns into FLOPs the other way: C / (GPUs x peak x MFU x goodput).
        row.update(gpu_cost_fields(C, device, gpus, mfu, dtype.lower(), price, DEFAULT_GOODPUT if goodput is None else goodput))
        if explain_default_mfu:
            say("MFU 0.4 is the default (observed 0.3-0.55 in published runs); set --mfu to change it")
    elif price is not None:
        raise InputError("--price needs --gpu (the price is per GPU-hour)")
    elif goodput is not None:
        raise InputError("--goodput applies to GPU time: add --gpu ID (and --gpus N), or --days/--hours/--gpu-hours")
    return checked([row])
