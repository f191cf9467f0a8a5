"""The serving-priced optimum (`optimal --inference-tokens T --serve-gpu G`): Sardana et al.'s
inference-aware optimum with each served token weighed by its GPU-time on a serving GPU
(llmplan.systems.serving, as the default engine runs it) instead of 2N FLOPs, training at the training GPU's peak x MFU.

It composes the inference-aware law (scaling) with serving and the GPU's peak (systems).
"""

from __future__ import annotations

from typing import Any

from llmplan.errors import InputError


def _one_of(value: str, allowed: Any, option: str) -> str:
    """The value, lower-cased, if it is one of `allowed`; InputError with the nearest spelling otherwise."""
    import difflib

    key = value.strip().lower()
    if key not in allowed:
        close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise InputError(f"{option} {value!r} is not one of {', '.join(allowed)}{hint}")
    return key


def cost_rows(law: Any, loss: float, inference_tokens: float, catalog: Any, serve_gpu: str, serve_batch: int, serve_input: int,
              serve_output: int, serve_dtype: str, train_gpu: str | None, train_mfu: float | None, train_price: float | None,
              serve_price: float | None) -> tuple[list[dict[str, Any]], list[str]]:
    """Sardana's optimum with serving weighed by its GPU-time (or dollars): the serving cost of each
    size from llmplan.systems.serving, training at the GPU's peak x MFU. Returns the row and the
    notes that explain it (how much a served token costs against 2N FLOPs, where the optimum moves)."""
    import functools

    from llmplan.scaling import inference_aware as inference
    from llmplan.systems import serving
    from llmplan.systems.budget import DEFAULT_MFU
    from llmplan.systems.gpu import peak_flops
    from llmplan.systems.memory.states import WEIGHT_DTYPES
    from llmplan.units import format_count

    for value, name in ((serve_batch, "--serve-batch"), (serve_input, "--serve-input"), (serve_output, "--serve-output")):
        if value < 1:
            raise InputError(f"{name} must be a positive whole number, not {value}")
    mfu = DEFAULT_MFU if train_mfu is None else train_mfu
    if not 0 < mfu <= 1:
        raise InputError(f"--train-mfu {mfu} must be in (0, 1], e.g. 0.4")
    for price, name in ((train_price, "--train-price"), (serve_price, "--serve-price")):
        if price is not None and not (0 < price < float("inf")):
            raise InputError(f"{name} {price} must be a positive USD amount per GPU-hour, e.g. 2.5")
    dtype = _one_of(serve_dtype, WEIGHT_DTYPES, "--serve-dtype")
    sg = catalog.get("gpus", serve_gpu)
    tg = catalog.get("gpus", train_gpu) if train_gpu else sg
    hw = serving.hardware_from_gpu(sg, dtype)
    peak, _ = peak_flops(tg, "bf16")
    per_flop = 1.0 / (peak * mfu)
    layouts: dict[float, int] = {}

    @functools.lru_cache(maxsize=None)
    def seconds_per_token(N: float) -> float:
        m = serving.served_at_size(N, hw, serve_batch, serve_input, serve_output, dtype)
        layouts[N] = m.tp
        return serving.gpu_seconds_per_token(m, hw, serve_batch, serve_input, serve_output)

    row = inference.cost_row(law, loss, inference_tokens, seconds_per_token, per_flop, train_price, serve_price)
    seconds_per_token(row["params"])
    row.update({"serve_gpu": sg.id, "serve_batch": serve_batch, "serve_tp": layouts[row["params"]], "serve_dtype": dtype,
                "serve_input_tokens": serve_input, "serve_output_tokens": serve_output, "train_gpu": tg.id, "train_mfu": mfu})
    notes = [f"a token served on {sg.id} (batch {serve_batch}, {serve_input} in + {serve_output} out, tp {row['serve_tp']}) costs "
             f"{row['inference_cost_ratio']:.2f}x its 2N FLOPs at training's rate ({tg.id}, MFU {mfu:g}); the optimum moves from "
             f"{format_count(row['sardana_params'])} (FLOPs only) to {format_count(row['params'])} parameters ({row['params_ratio']:.2f}x). "
             f"Serving is priced as {serving.default_engine().label} runs it, each kernel at its measured rate (llmplan serve; benchmarks/serve_report.py holds it to published figures)"]
    if "cost_usd" in row:
        notes.append(f"cost ${format_count(row['cost_usd'])} (training ${format_count(row['train_cost_usd'])} + serving "
                     f"${format_count(row['inference_cost_usd'])}); the FLOP-only optimum costs ${format_count(row['sardana_cost_usd'])}")
    return [row], notes
