"""`llmplan optimal`: the compute-optimal model size and tokens for a budget, under a scaling law."""

from __future__ import annotations

from typing import Annotated, Any, List, Optional

import typer

from llmplan.cli import options
from llmplan.cli.common import emit, expand, output_format, say, stdin_lines, warn

app = typer.Typer()

ParamsOption = options.params_option("Fix the model size (e.g. 7B): the tokens the budget buys, or without a budget the compute-optimal tokens for it; '-' reads one size per line from stdin (a row each).")
TargetLossOption = options.target_loss_option("The least compute that reaches this loss (nats/token); must be above the law's irreducible E.")
UniqueTokensOption = options.unique_tokens_option("Unique tokens available (e.g. 25B): the best split when data must be repeated, under the data-constrained law muennighoff-2023.")
PlotOption = options.plot_option("the law's loss contours over (N, D) with the plan")

LAW_HELP = "Scaling law: a preset id (epoch-2024, the default; chinchilla, kaplan-2020, tokens-per-param, ...), a TOML file, or 'all' for one row per law."
LawOption = options.law_option(LAW_HELP)


@app.command(help="""The compute-optimal model size and tokens for a compute budget, under a scaling law.

Budgets are FLOPs (1e24) or PF-days (3000pfd); START:STOP:N gives N log-spaced budgets and '-'
reads one per line from stdin. Or hardware time: --gpu with --gpus and --days/--hours, or
--gpu-hours, gives GPUs x dense peak x MFU x time x goodput. Loss is empty for laws that predict none (allocation rules).

Examples:

  llmplan optimal --budget 3000pfd

  llmplan optimal --gpu h100 --gpus 256 --days 30 --mfu 0.4   # the budget of a month on 256 H100s

  llmplan optimal --gpu h100 --gpus 256 --days 30 --mfu auto  # MFU from the throughput model

  llmplan optimal --budget 5.76e23 --law all

  llmplan optimal --budget 1e21:1e25:5 --law epoch-2024

  llmplan optimal --params 7B                  # the compute-optimal tokens for 7B

  printf '7B\n13B\n70B\n' | llmplan optimal --params -   # one row per size

  llmplan optimal --budget 1e23 --params 13B   # the tokens 1e23 FLOPs buys a 13B model

  llmplan optimal --target-loss 2.0            # the least compute that reaches loss 2.0

  llmplan optimal --ratio 25 --budget 1e24     # the D = 25 N rule

  llmplan optimal --budget 1e24 --shape         # with a LLaMA-style shape for the optimal size

  seq 20 26 | sed 's/^/1e/' | llmplan optimal --budget - -f csv

  llmplan optimal --budget 1e22 --unique-tokens 25B   # only 25B unique tokens

  llmplan optimal --target-loss 2.02 --inference-tokens 2T   # serve 2T tokens

  llmplan optimal --target-loss 2.02 --inference-tokens 2T --serve-gpu h100 --serve-batch 64   # weigh serving by GPU-time

  llmplan optimal --budget 1e24 --plot optimal.png   # loss contours
""")
@options.grouped(hardware_time=options.HARDWARE_TIME)
def optimal(
    budget: Annotated[Optional[List[str]], typer.Option("--budget", "-b", help="Compute budget: FLOPs (1e24) or PF-days (3000pfd); START:STOP:N; '-' reads stdin. Repeatable.", show_default=False)] = None,
    law: LawOption = None,
    params: ParamsOption = None,
    tokens: options.FixTokensOption = None,
    target_loss: TargetLossOption = None,
    ratio: Annotated[Optional[str], typer.Option("--ratio", help="Tokens per parameter for the tokens-per-param law (default 20); implies --law tokens-per-param.", show_default=False)] = None,
    unique_tokens: UniqueTokensOption = None,
    inference_tokens: options.InferenceTokensOption = None,
    serve_gpu: Annotated[Optional[str], typer.Option("--serve-gpu", help="With --inference-tokens: weigh serving by its GPU-time on this GPU (as llmplan serve's default engine runs it), not by 2N FLOPs.", show_default=False)] = None,
    serve_batch: Annotated[int, typer.Option("--serve-batch", help="With --serve-gpu: sequences decoded together.")] = 64,
    serve_input: Annotated[int, typer.Option("--serve-input", help="With --serve-gpu: prompt tokens per request.")] = 2048,
    serve_output: Annotated[int, typer.Option("--serve-output", help="With --serve-gpu: generated tokens per request.")] = 256,
    serve_dtype: Annotated[str, typer.Option("--serve-dtype", help="With --serve-gpu: served weight format (bf16, fp8, int8, int4, ...).")] = "bf16",
    train_gpu: Annotated[Optional[str], typer.Option("--train-gpu", help="With --serve-gpu: the training GPU (default: the serving GPU), at its bf16 peak x --train-mfu.", show_default=False)] = None,
    train_mfu: Annotated[Optional[float], typer.Option("--train-mfu", help="With --serve-gpu: training MFU (default 0.4).", show_default=False)] = None,
    train_price: Annotated[Optional[float], typer.Option("--train-price", help="With --serve-gpu: USD per training GPU-hour (one price given is used for both).", show_default=False)] = None,
    serve_price: Annotated[Optional[float], typer.Option("--serve-price", help="With --serve-gpu: USD per serving GPU-hour: minimise dollars, with costs in USD.", show_default=False)] = None,
    shape: Annotated[bool, typer.Option("--shape", help="Add a LLaMA-style shape (layers, d_model, heads, FFN; see 'llmplan arch --target') for each row's model size, with its exact count.")] = False,
    plot: PlotOption = None,
    hardware_time: options.Flags = None,
    fmt: options.FormatOption = None,
    presets: options.PresetsOption = None,
) -> None:
    from llmplan.commands.budgets import budget_title, hardware_title
    from llmplan.commands.optimal import optimal as compute, question
    from llmplan.units import format_count

    fmt = output_format(fmt)
    if params is not None and params.strip() == "-":  # one size per line from stdin (one row each), as `loss --params -` does
        params = stdin_lines()
    given = dict(law=law, params=params, tokens=tokens, target_loss=target_loss, ratio=ratio, unique_tokens=unique_tokens,
                 inference_tokens=inference_tokens, serve_gpu=serve_gpu, serve_batch=serve_batch, serve_input=serve_input,
                 serve_output=serve_output, serve_dtype=serve_dtype, train_gpu=train_gpu, train_mfu=train_mfu, train_price=train_price,
                 serve_price=serve_price, shape=shape, plot=plot, presets=presets, **hardware_time)
    if any(b.strip() == "-" for b in budget or ()):
        # The question is checked before stdin is read; a sweep from stdin in a machine format streams.
        asked = question(budget=budget, **{k: v for k, v in given.items() if k not in _NOT_ASKED})
        if list(budget) == ["-"] and asked.hardware is None and serve_gpu is None and fmt != "table" and plot is None and len(asked.laws) == 1:
            _stream_stdin(given, asked.laws[0], fmt)
            return
        budget = expand(budget, str)
    rows = compute(budget=budget, **given)
    say(rows)
    answer = rows.detail
    laws, hardware, budgets, sizes, N, D, L, U, I = (answer.laws, answer.hardware, answer.budgets, answer.sizes, answer.N, answer.D,
                                                     answer.L, answer.U, answer.I)
    what = laws[0].id if len(laws) == 1 else f"{len(laws)} laws"
    parts = []
    if hardware is not None:
        parts.append(hardware_title(hardware))
    if budgets:
        parts.append(budget_title(budgets))
    if N is not None:
        parts.append(f"{format_count(N)} parameters")
    elif len(sizes) > 1:
        parts.append(f"{len(sizes)} model sizes")
    if D is not None:
        parts.append(f"{format_count(D)} tokens")
    if L is not None:
        parts.append(f"target loss {L:g}")
    if U is not None:
        parts.append(f"{format_count(U)} unique tokens")
    if I is not None:
        parts.append(f"{format_count(I)} inference tokens")
    title = f"Compute-optimal ({what}): " + ", ".join(parts)
    columns = ["law", "flops", "pf_days", "params", "tokens", "tokens_per_param", "loss"]
    if U is not None:  # data-constrained: the plan, its epochs, and the unlimited-data optimum
        columns = ["flops", "params", "tokens", "unique_tokens", "epochs", "loss", "params_unlimited_data", "tokens_unlimited_data", "loss_unlimited_data"]
    if I is not None:  # inference-aware: the plan, its total compute and the saving
        columns = ["law", "loss", "params", "tokens", "total_flops", "chinchilla_params", "chinchilla_tokens", "saving_flops", "saving_fraction"]
    if serve_gpu is not None:
        columns = ["law", "loss", "params", "tokens", "sardana_params", "params_ratio", "inference_cost_ratio", "train_gpu_hours", "inference_gpu_hours", "saving_fraction"]
        columns.append("total_gpu_hours")
    if len(laws) > 1:
        columns.append("params_convention")
    if shape:
        columns += ["shape_layers", "shape_d_model", "shape_heads", "shape_ffn", "shape_params"]
    labels = {
        "pf_days": "PF-days", "tokens_per_param": "tokens/param", "params_convention": "counts", "unique_tokens": "unique",
        "params_unlimited_data": "N (unlim.)", "tokens_unlimited_data": "D (unlim.)", "loss_unlimited_data": "loss (unlim.)",
        "shape_layers": "layers", "shape_d_model": "d_model", "shape_heads": "heads", "shape_ffn": "ffn", "shape_params": "shape N",
        "sardana_params": "N (FLOPs only)", "params_ratio": "N ratio", "inference_cost_ratio": "serve cost/2N", "train_gpu_hours": "train GPU-h",
        "inference_gpu_hours": "serve GPU-h", "total_gpu_hours": "total GPU-h",
        "total_flops": "train+infer", "chinchilla_params": "Chinch. N", "chinchilla_tokens": "Chinch. D", "saving_flops": "saving", "saving_fraction": "saving %",
    }
    priority = ["law", "params", "tokens", "loss", "flops", "unique_tokens", "epochs", "total_flops", "saving_fraction", "tokens_per_param",
                "pf_days", "shape_layers", "shape_d_model", "shape_heads", "shape_ffn", "shape_params"]
    emit(rows, fmt, title=title, columns=columns, labels=labels, priority=priority)


# The options the question (llmplan.commands.optimal.question) does not check: those of the answer.
_NOT_ASKED = ("serve_gpu", "serve_batch", "serve_input", "serve_output", "serve_dtype", "train_gpu", "train_mfu", "train_price",
              "serve_price", "shape")


def _stream_stdin(given: dict, law: Any, fmt: str) -> None:
    """`optimal --budget -` in a machine format: rows written chunk by chunk as stdin is read, the
    function called once per chunk. The sweep says what it always said: the question's notes (said
    when it was checked) and one extrapolation warning for all its rows, not one per chunk."""
    from llmplan.cli.common import RowWriter, stdin_chunks
    from llmplan.commands.optimal import optimal as compute
    from llmplan.errors import InputError
    from llmplan.scaling.optimal import MAX_BUDGETS, parse_budget_spec

    writer = RowWriter(fmt)
    total = outside = 0
    for budgets in stdin_chunks(parse_budget_spec):
        total += len(budgets)
        if total > MAX_BUDGETS:
            raise InputError(f"more than {MAX_BUDGETS:,} budgets; split the sweep")
        rows = compute(budget=budgets, **given)
        outside += sum(1 for r in rows if r.get("extrapolated") is True)
        writer.write(rows)
    writer.close()
    if outside:
        warn(f"law {law.id} was fitted on {law.fitted_range_text()}; {outside:,} of {total:,} rows lie outside that range, so their numbers (marked *) are an extrapolation")
