"""`llmplan optimal`: the compute-optimal model size and tokens for a budget, under a scaling law."""

from __future__ import annotations

from typing import Annotated, Any, List, Optional

import typer

from llmplan.cli import options
from llmplan.cli.common import catalog, emit, expand, note, output_format, warn, warn_extrapolations, note_loss_datasets

app = typer.Typer()

ParamsOption = options.params_option("Fix the model size (e.g. 7B): the tokens the budget buys, or without a budget the compute-optimal tokens for it; '-' reads one size per line from stdin (a row each).")
TargetLossOption = options.target_loss_option("The least compute that reaches this loss (nats/token); must be above the law's irreducible E.")
UniqueTokensOption = options.unique_tokens_option("Unique tokens available (e.g. 25B): the best split when data must be repeated, under the data-constrained law muennighoff-2023.")
PlotOption = options.plot_option("the law's loss contours over (N, D) with the plan")

LAW_HELP = "Scaling law: a preset id (epoch-2024, the default; chinchilla, kaplan-2020, tokens-per-param, ...), a TOML file, or 'all' for one row per law."
LawOption = options.law_option(LAW_HELP)


def budget_title(budgets: list[float]) -> str:
    from llmplan.units import format_flops

    from llmplan.scaling.laws import PF_DAY

    def one(c: float) -> str:
        from llmplan.io.render import humanize

        return f"{humanize('pf_days', c / PF_DAY)} PF-days = {format_flops(c)}"

    if not budgets:
        return ""
    if len(budgets) == 1:
        return one(budgets[0])
    return f"{len(budgets)} budgets from {format_flops(min(budgets))} to {format_flops(max(budgets))}"


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
    gpu, gpus, days, hours, gpu_hours, mfu, goodput, dtype = (hardware_time[k] for k in ("gpu", "gpus", "days", "hours", "gpu_hours", "mfu", "goodput", "dtype"))
    from llmplan.units import format_count, parse_count, parse_positive

    fmt = output_format(fmt)
    # --params - reads one size per line from stdin (one row each), as `loss --params -` does
    sizes = expand([params], lambda text: parse_count(text, "a parameter count")) if params is not None else [None]
    if not sizes:
        from llmplan.errors import InputError

        raise InputError("--params - read no parameter counts from stdin; give one per line, e.g. 7B")
    N = sizes[0] if len(sizes) == 1 else None
    D = parse_count(tokens, "a token count") if tokens is not None else None
    L = parse_positive(target_loss, "a target loss (nats per token, e.g. 2.0)") if target_loss is not None else None
    r = parse_positive(ratio, "a tokens-per-parameter ratio (e.g. 20)") if ratio is not None else None
    U = parse_count(unique_tokens, "a count of unique tokens") if unique_tokens is not None else None
    I = parse_count(inference_tokens, "a count of inference tokens") if inference_tokens is not None else None
    from llmplan.errors import InputError

    if U is not None and I is not None:
        raise InputError("give --unique-tokens or --inference-tokens, not both")
    if plot is not None:
        from llmplan.io.plots import check_plot_path, require_matplotlib

        check_plot_path(plot)
        require_matplotlib()
    from llmplan.cli.options import hardware_title
    from llmplan.systems.budget import hardware_budget, parse_mfu, wants_hardware_budget

    hardware = None
    auto = False
    if wants_hardware_budget(days, hours, gpu_hours):
        if budget:
            raise InputError("give --budget or hardware time (--days, --hours, --gpu-hours), not both")
        auto = mfu is not None and mfu.strip().lower() == "auto"
        hardware = hardware_budget(catalog(presets), gpu, gpus, days, hours, gpu_hours, parse_mfu(None if auto else mfu), goodput, dtype)
    elif gpu is not None or gpus is not None or mfu is not None or goodput is not None:
        raise InputError("--gpu, --gpus, --mfu and --goodput make a budget from hardware time: add --days, --hours or --gpu-hours")
    if U is not None:
        from llmplan.scaling.data_constrained import CAVEAT, resolve_law

        laws = [resolve_law(law)]
        note(CAVEAT)
    else:
        from llmplan.scaling.laws import resolve_laws

        laws = resolve_laws(law, catalog(presets), r)
    if list(budget or ()) == ["-"] and hardware is None and serve_gpu is None and fmt != "table" and plot is None and len(laws) == 1:
        # A sweep from stdin streams: chunks of budgets in, rows out, in bounded memory.
        _stream_stdin(laws[0], N, D, L, U, I, shape, fmt)
        return
    if hardware is not None:
        budgets = [hardware.flops]
    else:
        from llmplan.scaling.optimal import parse_budget_spec

        budgets = [c for group in expand(budget, parse_budget_spec) for c in group]
    from llmplan.scaling.optimal import MAX_BUDGETS

    if len(budgets) > MAX_BUDGETS:
        raise InputError(f"{len(budgets):,} budgets are more than {MAX_BUDGETS:,}; split the sweep")
    if hardware is not None and auto:  # the MFU the throughput model reaches on the model this budget buys
        if len(laws) > 1:
            raise InputError("--mfu auto follows the model of one law; pick it with --law")
        from llmplan.scaling.hparams import load_hparams
        from llmplan.planning.plan import plan_record

        cat = catalog(presets)
        planned, _, notes = plan_record(laws[0], load_hparams(None, cat), hardware, params=N, tokens=D, unique_tokens=U,
                                        gpu=cat.get("gpus", hardware.gpu), auto_mfu=True)
        for line in notes:
            note(line)
        hardware = hardware.with_mfu(planned["mfu"])
        budgets = [hardware.flops]

    from llmplan.rows import checked, mark_extrapolation, out_of_range
    from llmplan.scaling.optimal import solve

    rows: list[dict] = []
    extrapolating: list[tuple[str, str]] = []
    for each in laws:
        if L is not None and not each.predicts_loss and len(laws) > 1:
            note(f"law {each.id} predicts no loss; left out of --target-loss")
            continue
        if I is not None and getattr(each, "form", None) != "chinchilla" and len(laws) > 1:
            note(f"law {each.id} is not of the Chinchilla form; left out of --inference-tokens")
            continue
        with out_of_range():
            if serve_gpu is not None:  # inference weighed by serving cost (issue 17)
                from llmplan.planning.serving_cost import cost_rows

                if I is None or L is None or budgets or N is not None or D is not None:
                    raise InputError("--serve-gpu weighs --inference-tokens by serving cost: llmplan optimal --target-loss 2.0 --inference-tokens 2T --serve-gpu h100")
                answer, explained = cost_rows(each, L, I, catalog(presets), serve_gpu, serve_batch, serve_input, serve_output, serve_dtype,
                                              train_gpu, train_mfu, train_price, serve_price)
                for line in explained:
                    note(line)
            else:
                answer = checked([r for size in sizes for r in solve(each, budgets, params=size, tokens=D, target_loss=L, unique_tokens=U, inference_tokens=I)])
        warning = mark_extrapolation(each, answer)
        if warning:
            extrapolating.append((each.id, warning))
        rows.extend(answer)
    warn_extrapolations(extrapolating, len(laws))
    note_loss_datasets(rows, presets)
    if not rows:
        raise InputError("no law could answer this question")
    if hardware is not None:
        for r in rows:
            r.update(hardware.fields())
    if shape:
        from llmplan.model.propose import shape_columns

        for r in rows:
            r.update(shape_columns(r["params"]))
    if plot is not None:
        from llmplan.io.plots import plan_points, plot_loss_contours

        if len(laws) > 1 or not getattr(laws[0], "loss", None) or (U is None and not laws[0].predicts_loss):
            raise InputError("--plot draws the loss contours of one law that predicts loss; pick it with --law (e.g. --law chinchilla)")
        plot_loss_contours(plot, laws[0], plan_points(rows), unique_tokens=U, iso_loss=L)
        note(f"wrote {plot}")

    if len(laws) == 1:
        chosen = laws[0]
        what = chosen.id
    else:
        what = f"{len(laws)} laws"
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
    rule_only = [l.id for l in laws if getattr(l, "minimises_loss", None) is False]
    if rule_only:
        lower = [r for r in rows if r.get("law") in rule_only and r.get("isoflop_min_loss") is not None and r.get("loss") is not None
                 and r["isoflop_min_loss"] < r["loss"]]
        example = (f": at {lower[0]['flops']:.3g} FLOPs {lower[0]['law']}'s 'optimal' loss is {lower[0]['loss']:.4g}, its own L(N, D) reaches "
                   f"{lower[0]['isoflop_min_loss']:.4g} at {format_count(lower[0]['isoflop_min_params'])} params") if lower else ""
        note(f"{', '.join(rule_only)}: the allocation is the paper's fitted rule, not the minimiser of its own L(N, D); other splits of the same "
             f"compute reach a lower loss{example} (keys minimises_loss, isoflop_min_loss, isoflop_min_params)")
    if any(l.convention != "total" for l in laws):
        note("kaplan-2020 and deepseek-2024 count NON-embedding parameters (column 'counts'); the others count all parameters")
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


def _stream_stdin(law: Any, N: Any, D: Any, L: Any, U: Any, I: Any, shape: bool, fmt: str) -> None:
    """`optimal --budget -` in a machine format: rows written chunk by chunk as stdin is read."""
    from llmplan.cli.common import RowWriter, stdin_chunks
    from llmplan.errors import InputError
    from llmplan.rows import checked, mark_extrapolation, out_of_range
    from llmplan.scaling.optimal import MAX_BUDGETS, parse_budget_spec, solve

    writer = RowWriter(fmt)
    total = outside = 0
    for budgets in stdin_chunks(parse_budget_spec):
        total += len(budgets)
        if total > MAX_BUDGETS:
            raise InputError(f"more than {MAX_BUDGETS:,} budgets; split the sweep")
        with out_of_range():
            rows = checked(solve(law, budgets, params=N, tokens=D, target_loss=L, unique_tokens=U, inference_tokens=I))
        mark_extrapolation(law, rows)
        outside += sum(1 for r in rows if r.get("extrapolated") is True)
        if shape:
            from llmplan.model.propose import shape_columns

            for r in rows:
                r.update(shape_columns(r["params"]))
        writer.write(rows)
    writer.close()
    if outside:
        warn(f"law {law.id} was fitted on {law.fitted_range_text()}; {outside:,} of {total:,} rows lie outside that range, so their numbers (marked *) are an extrapolation")
