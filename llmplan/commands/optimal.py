"""`llmplan optimal` as a function: the compute-optimal model size and tokens for a budget, under a scaling law."""

from __future__ import annotations

from typing import Any, Optional

from llmplan.commands import args
from llmplan.commands.budgets import hardware_texts
from llmplan.commands.notes import laws_answered, note
from llmplan.commands.result import Rows, command
from llmplan.errors import InputError
from llmplan.records import record

_INF = float("inf")


@record(frozen=False)
class Question:
    """What an `optimal` call asks, checked: the laws, the fixed quantities (N, D, target loss L,
    unique tokens U, inference tokens I; `sizes` the model sizes, one row each) and the hardware budget.
    The budgets are read after it (a sweep from stdin is read once the question is known to be good)."""

    laws: list
    sizes: list
    N: Optional[float]
    D: Optional[float]
    L: Optional[float]
    U: Optional[float]
    I: Optional[float]
    hardware: Any
    auto: bool


def question(*, budget: Any = None, law: Any = None, params: Any = None, tokens: Any = None, target_loss: Any = None,
             ratio: Any = None, unique_tokens: Any = None, inference_tokens: Any = None, plot: Any = None, gpu: Any = None,
             gpus: Any = None, days: Any = None, hours: Any = None, gpu_hours: Any = None, mfu: Any = None, goodput: Any = None,
             dtype: Any = "bf16", presets: Any = None) -> Question:
    """The checks of `optimal`'s options, in the command's order, before any budget is read: bad input
    raises here (the command line asks this before it reads budgets from stdin)."""
    from llmplan.presets import catalog
    from llmplan.units import parse_count, parse_positive

    # params: one size, or a list (what --params - reads from stdin): a row each
    sizes = [parse_count(args.text(p), "a parameter count") for p in args.listed(params)] if params is not None else [None]
    if not sizes:
        raise InputError("--params - read no parameter counts from stdin; give one per line, e.g. 7B")
    N = sizes[0] if len(sizes) == 1 else None
    D = parse_count(args.text(tokens), "a token count") if tokens is not None else None
    L = parse_positive(args.text(target_loss), "a target loss (nats per token, e.g. 2.0)") if target_loss is not None else None
    r = parse_positive(args.text(ratio), "a tokens-per-parameter ratio (e.g. 20)") if ratio is not None else None
    U = parse_count(args.text(unique_tokens), "a count of unique tokens") if unique_tokens is not None else None
    I = parse_count(args.text(inference_tokens), "a count of inference tokens") if inference_tokens is not None else None
    if U is not None and I is not None:
        raise InputError("give --unique-tokens or --inference-tokens, not both")
    if plot is not None:
        from llmplan.io.plots import check_plot_path, require_matplotlib

        check_plot_path(plot)
        require_matplotlib()
    from llmplan.systems.budget import hardware_budget, parse_mfu, wants_hardware_budget

    gpu, gpus, days, hours, gpu_hours, mfu, goodput, dtype = hardware_texts(gpu, gpus, days, hours, gpu_hours, mfu, goodput, dtype)
    hardware = None
    auto = False
    if wants_hardware_budget(days, hours, gpu_hours):
        if budget:
            raise InputError("give --budget or hardware time (--days, --hours, --gpu-hours), not both")
        auto = mfu is not None and mfu.strip().lower() == "auto"
        hardware = hardware_budget(catalog(presets), gpu, gpus, days, hours, gpu_hours, parse_mfu(None if auto else mfu), goodput, dtype)
    elif gpu is not None or gpus is not None or mfu is not None or goodput is not None:
        raise InputError("--gpu, --gpus, --mfu and --goodput make a budget from hardware time: add --days, --hours or --gpu-hours")
    law = args.text(law)
    if U is not None:
        from llmplan.scaling.data_constrained import CAVEAT, resolve_law

        laws = [resolve_law(law)]
        note(CAVEAT)
    else:
        from llmplan.scaling.laws import resolve_laws

        laws = resolve_laws(law, catalog(presets), r)
    return Question(laws, sizes, N, D, L, U, I, hardware, auto)


@record(frozen=False)
class Optimal(Question):
    """What `optimal`'s rows answered (Rows.detail): the question, and the budgets and hardware it ran at
    (with --mfu auto, the hardware at the MFU found)."""

    budgets: list


@command
def optimal(
    *, budget: Any = None, law: Any = None, params: Any = None, tokens: Any = None, target_loss: Any = None, ratio: Any = None,
    unique_tokens: Any = None, inference_tokens: Any = None, serve_gpu: Any = None, serve_batch: Any = 64, serve_input: Any = 2048,
    serve_output: Any = 256, serve_dtype: Any = "bf16", train_gpu: Any = None, train_mfu: Any = None, train_price: Any = None,
    serve_price: Any = None, shape: Any = False, plot: Any = None, gpu: Any = None, gpus: Any = None, days: Any = None,
    hours: Any = None, gpu_hours: Any = None, mfu: Any = None, goodput: Any = None, dtype: Any = "bf16", presets: Any = None,
) -> Rows:
    """The compute-optimal model size and tokens (`llmplan optimal`) for a compute budget, under a scaling law.

    `budget`: FLOPs (1e24) or PF-days ("3000pfd"), "START:STOP:N" for N log-spaced budgets, or a list of
    them (what --budget - reads from stdin), a row each; or hardware time (gpu with gpus and days or hours,
    or gpu_hours; mfu="auto" from the throughput model). `params` fixes the size (a list: a row each),
    `tokens` the tokens; `target_loss` asks for the least compute reaching it; `unique_tokens` repeats
    data, `inference_tokens` weighs serving (by GPU-time with `serve_gpu`); law="all" gives a row per law.
    `detail` is an Optimal: the laws, the fixed quantities, the budgets and hardware the rows answer.

    Example: llmplan.optimal(budget="3000pfd")[0]["params"]; llmplan.optimal(budget=[1e21, 1e22], law="chinchilla")
    """
    serve_batch, serve_input, serve_output = (args.integer(value, name) for value, name in (
        (serve_batch, "--serve-batch"), (serve_input, "--serve-input"), (serve_output, "--serve-output")))
    train_mfu, train_price, serve_price = (args.number(value, name) for value, name in (
        (train_mfu, "--train-mfu"), (train_price, "--train-price"), (serve_price, "--serve-price")))
    serve_gpu, serve_dtype, train_gpu = args.text(serve_gpu), args.text(serve_dtype), args.text(train_gpu)
    shape = args.switch(shape, "--shape")
    budget = args.listed(budget)
    q = question(budget=budget, law=law, params=params, tokens=tokens, target_loss=target_loss, ratio=ratio,
                 unique_tokens=unique_tokens, inference_tokens=inference_tokens, plot=plot, gpu=gpu, gpus=gpus, days=days,
                 hours=hours, gpu_hours=gpu_hours, mfu=mfu, goodput=goodput, dtype=dtype, presets=presets)
    laws, sizes, N, D, L, U, I, hardware = q.laws, q.sizes, q.N, q.D, q.L, q.U, q.I, q.hardware
    from llmplan.presets import catalog
    from llmplan.scaling.optimal import MAX_BUDGETS, parse_budget_spec

    if hardware is not None:
        budgets = [hardware.flops]
    else:
        # (a float is its own budget, checked by parse_budget_spec's fast path: a sweep's chunk of a million)
        budgets = [c for item in budget or () for c in ([item] if item.__class__ is float and 0 < item < _INF else parse_budget_spec(args.text(item)))]
    if len(budgets) > MAX_BUDGETS:
        raise InputError(f"{len(budgets):,} budgets are more than {MAX_BUDGETS:,}; split the sweep")
    if hardware is not None and q.auto:  # the MFU the throughput model reaches on the model this budget buys
        if len(laws) > 1:
            raise InputError("--mfu auto follows the model of one law; pick it with --law")
        from llmplan.planning.plan import plan_record
        from llmplan.scaling.hparams import load_hparams

        cat = catalog(presets)
        planned, _, said = plan_record(laws[0], load_hparams(None, cat), hardware, params=N, tokens=D, unique_tokens=U,
                                       gpu=cat.get("gpus", hardware.gpu), auto_mfu=True)
        for line in said:
            note(line)
        hardware = hardware.with_mfu(planned["mfu"])
        budgets = [hardware.flops]

    from llmplan.rows import checked, out_of_range
    from llmplan.scaling.optimal import solve

    answered: list[tuple[Any, list]] = []
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
        answered.append((each, answer))
    rows = laws_answered(answered, len(laws), presets)
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
    rule_only = [l.id for l in laws if getattr(l, "minimises_loss", None) is False]
    if rule_only:
        from llmplan.units import format_count

        lower = [r for r in rows if r.get("law") in rule_only and r.get("isoflop_min_loss") is not None and r.get("loss") is not None
                 and r["isoflop_min_loss"] < r["loss"]]
        example = (f": at {lower[0]['flops']:.3g} FLOPs {lower[0]['law']}'s 'optimal' loss is {lower[0]['loss']:.4g}, its own L(N, D) reaches "
                   f"{lower[0]['isoflop_min_loss']:.4g} at {format_count(lower[0]['isoflop_min_params'])} params") if lower else ""
        note(f"{', '.join(rule_only)}: the allocation is the paper's fitted rule, not the minimiser of its own L(N, D); other splits of the same "
             f"compute reach a lower loss{example} (keys minimises_loss, isoflop_min_loss, isoflop_min_params)")
    if any(l.convention != "total" for l in laws):
        note("kaplan-2020 and deepseek-2024 count NON-embedding parameters (column 'counts'); the others count all parameters")
    return Rows(rows, detail=Optimal(laws, sizes, N, D, L, U, I, hardware, q.auto, budgets))
