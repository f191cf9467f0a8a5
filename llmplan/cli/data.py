"""`llmplan data filter|domain|mix`: how hard to filter a pool, how to size a domain model, which mixture."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from llmplan.cli.common import catalog, emit, note, output_format, warn
from llmplan.cli import options
from llmplan.cli.options import FormatOption, PresetsOption

app = typer.Typer(help="Data: how hard to filter a pool, how to size a domain model (BloombergGPT's recipe), which mixture.", no_args_is_help=True)

TokensOption = options.tokens_option("Training tokens instead of the law's compute-optimal count (N = budget / 6D); with --buckets the target tokens.")

BudgetOption = Annotated[Optional[str], typer.Option("--budget", "-b", help="Compute budget: FLOPs (1e24) or PF-days (3000pfd); or give hardware time (--gpu with --gpu-hours, or --gpus and --days).", show_default=False)]


# The recipe's 30% buffer already covers failures, so its goodput defaults to 1 (its own help).
_DOMAIN_TIME = options.with_option(options.HARDWARE_TIME, "goodput", Annotated[Optional[str], typer.Option(
    "--goodput", help="Share of calendar time spent training (default 1 here: the recipe's buffer covers failures).", show_default=False)])


def _budget(budget, hardware_time, presets, default_goodput=None):
    """(FLOPs, title words) from --budget or from hardware time (llmplan.systems.budget)."""
    gpu, gpus, days, hours, gpu_hours, mfu, goodput, dtype = (hardware_time[k] for k in ("gpu", "gpus", "days", "hours", "gpu_hours", "mfu", "goodput", "dtype"))
    from llmplan.cli.options import hardware_title
    from llmplan.systems.budget import hardware_budget, parse_mfu, wants_hardware_budget
    from llmplan.errors import InputError
    from llmplan.units import format_flops, parse_compute

    if wants_hardware_budget(days, hours, gpu_hours):
        if budget is not None:
            raise InputError("give --budget or hardware time (--gpu-hours, or --gpus with --days), not both")
        hw = hardware_budget(catalog(presets), gpu, gpus, days, hours, gpu_hours, parse_mfu(mfu), goodput if goodput is not None else default_goodput, dtype)
        return [hw.flops], f"{hardware_title(hw)} = {format_flops(hw.flops)}"
    if gpu is not None or gpus is not None or mfu is not None or goodput is not None:
        raise InputError("--gpu, --gpus, --mfu and --goodput make a budget from hardware time: add --gpu-hours or --days")
    if budget is None:
        raise InputError("give a budget: --budget 1e24, or hardware time such as --gpu h100 --gpu-hours 1M")
    values = [parse_compute(part) for part in budget.split(",") if part.strip()]
    if not values:
        raise InputError("--budget is empty; e.g. --budget 1e24")
    return values, ", ".join(format_flops(v) for v in values)


def _fractions(text: str) -> list[float]:
    from llmplan.errors import InputError
    from llmplan.scaling.data_filtering import check_keep

    out = []
    for part in text.split(","):
        part = part.strip()
        percent = part.endswith("%")
        try:
            value = round(float(part.rstrip("%")) / (100.0 if percent else 1.0), 12)  # 1.4% is 0.014, not 0.013999999999999999
        except ValueError:
            raise InputError(f"--keep {part!r} is not a number; give fractions of the pool, e.g. --keep 0.014,0.03,0.2") from None
        out.append(check_keep(value))
    return out


FILTER_LABELS = {"keep": "keep", "unique_tokens": "unique", "tokens": "tokens", "epochs": "epochs", "effective_tokens": "effective",
                 "repetition_cost": "rep. cost", "loss": "loss", "loss_unlimited_data": "loss (all unique)", "optimal_params": "best N",
                 "optimal_tokens": "best D", "optimal_loss": "best loss", "params": "params", "within_max_cost": "ok"}
FILTER_PRIORITY = ["keep", "unique_tokens", "epochs", "effective_tokens", "loss", "repetition_cost", "optimal_params", "optimal_loss",
                   "tokens", "params", "optimal_tokens", "loss_unlimited_data", "within_max_cost"]


@app.command("filter", help="""How hard to filter a raw pool for a budget: the cost of repetition for each keep fraction, and published priors.

For each keep fraction f the pool leaves U = f x pool unique tokens; the compute-optimal run (Muennighoff et al. 2023's
C4 fit, 6ND = budget, or --tokens) needs D / U epochs. Effective tokens and loss come from the repetition law (a FITTED
LAW, 7M-9B params, 1-500 epochs); best N, D, loss re-split the budget for that U. What filtering GAINS has no published
law for language models: DCLM, FineWeb-Edu and Muennighoff's filtering results are shown as PRIORS (measured points with
their source), never added to the loss. The cost of scoring the pool with a classifier is FineWeb-Edu's 400 H100-hours
per 1T tokens. With --buckets, fit Goyal et al. 2024's per-bucket utility decay to your runs and get the best number
of top buckets for the target tokens.

Examples:

  llmplan data filter --pool 15T --budget 1e24

  llmplan data filter --pool 15T --budget 1e24 --keep 0.014,0.03,0.087,0.2 --max-cost 0.1

  llmplan data filter --pool 5T --gpu h100 --gpus 1024 --days 30

  llmplan data filter --priors

  llmplan data filter --buckets tests/data/bucket_runs.csv --bucket-tokens 100B --tokens 1T
""")
@options.grouped(hardware_time=options.HARDWARE_TIME)
def filter_(
    pool: Annotated[Optional[str], typer.Option("--pool", help="Raw pool size in tokens (e.g. 15T).", show_default=False)] = None,
    keep: Annotated[Optional[str], typer.Option("--keep", help="Keep fractions, comma-separated (default 0.014,0.03,0.087,0.2,1: DCLM-Baseline, 3%, FineWeb-Edu, DCLM's loosest, none).", show_default=False)] = None,
    budget: BudgetOption = None,
    tokens: TokensOption = None,
    max_cost: Annotated[str, typer.Option("--max-cost", help="Repetition cost tolerated: the share of the data's worth lost to repeats (1 - effective/tokens).")] = "0.05",
    classifier_hours: Annotated[Optional[str], typer.Option("--classifier-hours", help="GPU-hours to score 1T tokens with the quality classifier (default: FineWeb-Edu's 400 H100-hours).", show_default=False)] = None,
    priors: Annotated[bool, typer.Option("--priors", help="Print only the published filtering points (priors, with sources).")] = False,
    buckets: Annotated[Optional[str], typer.Option("--buckets", help="Runs per quality bucket (bucket, tokens, unique_tokens, loss; best bucket first): fit Goyal et al. 2024's utility decay.", show_default=False)] = None,
    bucket_tokens: Annotated[Optional[str], typer.Option("--bucket-tokens", help="With --buckets: unique tokens in each bucket at the target scale.", show_default=False)] = None,
    hardware_time: options.Flags = None,
    fmt: FormatOption = None,
    presets: PresetsOption = None,
) -> None:
    from llmplan.errors import InputError
    from llmplan.units import format_count, parse_count, parse_positive

    fmt = output_format(fmt)
    if priors:
        if any(v is not None for v in (pool, keep, budget, tokens, buckets, bucket_tokens, hardware_time["gpu_hours"], hardware_time["days"], hardware_time["hours"])):
            raise InputError("--priors prints the published points alone; drop the other options")
        _emit_priors(fmt)
        return
    if buckets is not None:
        _buckets(fmt, buckets, bucket_tokens, tokens, pool, keep, budget, hardware_time, presets)
        return
    if bucket_tokens is not None:
        raise InputError("--bucket-tokens goes with --buckets FILE")
    if pool is None:
        raise InputError("give the raw pool: --pool 15T (tokens before filtering)")
    P = parse_count(pool, "a pool size in tokens (e.g. 15T)")
    keeps = _fractions(keep) if keep is not None else None
    budgets, title = _budget(budget, hardware_time, presets)
    if len(budgets) > 1:
        raise InputError("data filter takes one budget; run it once per budget")
    D = parse_count(tokens, "a token count") if tokens is not None else None
    cost = parse_positive(max_cost, "a repetition cost (a fraction such as 0.05)")
    from llmplan.scaling.data_filtering import DEFAULT_KEEP, LAW_RANGE
    from llmplan.scaling.data_priors import classifier_cost

    prior_cost = classifier_cost()
    per_t = parse_positive(classifier_hours, "GPU-hours per 1T tokens scored") if classifier_hours is not None else prior_cost["gpu_hours_per_trillion"]
    from llmplan.planning.data import filter_rows

    rows, summary = filter_rows(budgets[0], P, keeps or list(DEFAULT_KEEP), D, cost, per_t)
    emit(rows, fmt, title=f"Filtering a {format_count(P)}-token pool for {title} (predictions of the repetition law)",
         labels=FILTER_LABELS, priority=FILTER_PRIORITY if fmt == "table" else None,
         columns=FILTER_PRIORITY if fmt == "table" else None,
         footnotes=[f"Law: Muennighoff et al. 2023 C4 fit, {LAW_RANGE}; absolute losses are for comparison, not observed values."] if fmt == "table" else ())
    where = "your classifier" if classifier_hours is not None else f"{prior_cost['gpu'].upper()} at FineWeb-Edu's rate, {prior_cost['source']}"
    note(f"repetition costs more than {cost:.0%} of the data's worth beyond {summary['max_epochs']:.2f} epochs: "
         f"at {format_count(summary['tokens'])} tokens keep at least {summary['min_keep']:.3g} of the pool")
    note(f"scoring the pool with a classifier: {summary['scoring_gpu_hours']:,.0f} GPU-hours ({where})")
    if fmt == "table":
        _emit_priors(fmt)
    else:
        note("published filtering points (priors, not predictions): llmplan data filter --priors")


def _emit_priors(fmt: str) -> None:
    from llmplan.scaling.data_priors import NO_MULTIPLIER_LAW, filter_priors

    rows = [{k: p[k] for k in ("prior", "keep", "gain", "model", "paper", "source", "evidence")} for p in filter_priors()]
    emit(rows, fmt, title="Published filtering points: PRIORS, not predictions (never added to the loss)",
         columns=["keep", "gain", "paper", "evidence", "model", "source", "prior"] if fmt == "table" else None,
         priority=["keep", "gain", "paper", "evidence", "model", "source", "prior"] if fmt == "table" else None,
         footnotes=[NO_MULTIPLIER_LAW + "."] if fmt == "table" else ())
    if fmt != "table":
        note(NO_MULTIPLIER_LAW)


def _buckets(fmt, path, bucket_tokens, tokens, pool, keep, budget, hardware_time, presets) -> None:
    from llmplan.errors import InputError
    from llmplan.io.bucket_runs import read_bucket_runs
    from llmplan.units import format_count, parse_count

    if keep is not None or pool is not None:
        raise InputError("--buckets ranks whole buckets; drop --keep and --pool (give --bucket-tokens, each bucket's size)")
    if bucket_tokens is None:
        raise InputError("--buckets needs --bucket-tokens: the unique tokens in each bucket at the target scale (e.g. 100B)")
    S = parse_count(bucket_tokens, "a token count")
    if tokens is not None:
        if budget is not None or any(hardware_time[k] is not None for k in ("gpu_hours", "days", "hours")):
            raise InputError("give --tokens (the target) or a budget, not both")
        D = parse_count(tokens, "a token count")
    else:
        from llmplan.scaling.data_constrained import optimal_unlimited

        budgets, _ = _budget(budget, hardware_time, presets)
        D = optimal_unlimited(budgets[0])[1]
    runs = read_bucket_runs(path)
    from llmplan.planning.data import bucket_rows
    from llmplan.scaling.data_filtering import fit_buckets

    fit = fit_buckets(runs.bucket, runs.tokens, runs.unique_tokens, runs.loss)
    rows = bucket_rows(fit, D, S)
    for name, b, tau in zip(fit.buckets, fit.b, fit.tau):
        note(f"bucket {name}: utility b = {b:.4g}, half-life tau = {tau:.3g} epochs (fitted)")
    lo, hi = min(runs.tokens), max(runs.tokens)
    note(f"Goyal et al. 2024 utility-decay form fitted to {fit.runs} runs ({format_count(lo)}-{format_count(hi)} tokens seen), "
         f"a = {fit.a:.4g}, d = {fit.d:.4g}, RMSE {fit.rmse:.3g}; the mixture rule tau_hat = p tau assumes equal-size buckets")
    if fit.at_bound:
        warn(f"the fit put {', '.join(fit.at_bound)} at the edge of the range searched: the runs do not fix "
             f"{'it' if len(fit.at_bound) == 1 else 'them'}; give runs at more epoch counts per bucket")
    if D > 10 * hi:
        warn(f"the target {format_count(D)} tokens is more than 10x the largest run ({format_count(hi)}): an extrapolation")
    emit(rows, fmt, title=f"Top quality buckets for {format_count(D)} tokens, {format_count(S)} unique tokens each (fitted utility decay)")


DOMAIN_LABELS = {"params": "params", "tokens": "tokens", "domain_share": "domain share", "domain_epochs": "domain epochs",
                 "shape_layers": "layers", "shape_d_model": "hidden", "shape_d_model_levine": "Levine D", "effective_flops": "0.75 C",
                 "params_approach1": "N (A1)", "params_approach2": "N (A2)", "tokens_approach1": "D (A1)", "tokens_approach2": "D (A2)",
                 "params_buffer_max": "N max (buffer)", "budget_flops": "budget", "planned_tokens": "planned D", "budget_used_share": "used"}
DOMAIN_PRIORITY = ["budget_flops", "params", "tokens", "domain_share", "domain_epochs", "shape_layers", "shape_d_model", "params_approach2",
                   "tokens_approach2", "params_approach1", "tokens_approach1", "params_buffer_max", "shape_d_model_levine", "effective_flops",
                   "planned_tokens", "budget_used_share"]


@app.command("domain", help="""Size a domain model from scratch with BloombergGPT's recipe (Wu et al. 2023, Sec. 3.2), step by step.

1. the budget less activation checkpointing's share (0.75 C); 2. the paper's two regressions over Hoffmann et al.'s
tables (Approach 1 and 2: FITTED LAWS over their tabulated optima); 3. the largest model, up to the regressions'
smaller N, that trains on all available tokens leaving a compute buffer (30%); 4. the domain share: as much domain
text as --max-domain-epochs allows (1: BloombergGPT's 51% of 708B); 5. the shape from Levine et al. 2020,
D = exp(5.039 + 0.0555 L), rounded to --round-to. Without --general-tokens general text is unlimited.

Examples:

  llmplan data domain --domain-tokens 363B --general-tokens 345B --gpu-hours 1.3M --gpu a100-40gb --mfu 0.327

  llmplan data domain --domain-tokens 363B --general-tokens 345B --budget 4.733e23 --trained-tokens 569B

  llmplan data domain --domain-tokens 50B --budget 1e22,1e23,1e24 --max-domain-epochs 4
""")
@options.grouped(hardware_time=_DOMAIN_TIME)
def domain(
    domain_tokens: Annotated[Optional[str], typer.Option("--domain-tokens", help="Unique tokens of domain text (e.g. 363B).", show_default=False)] = None,
    general_tokens: Annotated[Optional[str], typer.Option("--general-tokens", help="Unique tokens of general text (default: unlimited).", show_default=False)] = None,
    budget: BudgetOption = None,
    max_domain_epochs: Annotated[str, typer.Option("--max-domain-epochs", help="Passes allowed over the domain text (BloombergGPT: at most 1).")] = "1",
    buffer: Annotated[str, typer.Option("--buffer", help="Share of the budget kept for failures, retries and restarts (BloombergGPT: ~30%).")] = "0.3",
    no_checkpointing: Annotated[bool, typer.Option("--no-checkpointing", help="Use the whole budget (no activation checkpointing: no 0.75 factor).")] = False,
    trained_tokens: Annotated[Optional[str], typer.Option("--trained-tokens", help="Tokens the run actually trained if it stopped early (BloombergGPT: 569B of 708B).", show_default=False)] = None,
    vocab: Annotated[int, typer.Option("--vocab", help="Vocabulary size for the shape's parameter count (BloombergGPT: 131,072).", min=1)] = 131_072,
    round_to: Annotated[int, typer.Option("--round-to", help="Round the hidden size to a multiple of this (BloombergGPT chose 40 heads x 192 = 7,680).", min=1)] = 128,
    hardware_time: options.Flags = None,
    fmt: FormatOption = None,
    presets: PresetsOption = None,
) -> None:
    from llmplan.errors import InputError
    from llmplan.units import format_count, parse_count, parse_positive

    fmt = output_format(fmt)
    if domain_tokens is None:
        raise InputError("give the domain text: --domain-tokens 363B")
    U = parse_count(domain_tokens, "a token count")
    G = parse_count(general_tokens, "a token count") if general_tokens is not None else None
    e_max = parse_positive(max_domain_epochs, "a number of epochs")
    try:
        b = float(buffer)
    except ValueError:
        raise InputError(f"--buffer {buffer!r} is not a number; e.g. --buffer 0.3") from None
    trained = parse_count(trained_tokens, "a token count") if trained_tokens is not None else None
    budgets, title = _budget(budget, hardware_time, presets, default_goodput="1")
    from llmplan.planning.data import domain_rows
    from llmplan.scaling.domain import FITTED_RANGE

    rows = domain_rows(budgets, U, G, e_max, b, not no_checkpointing, trained, vocab, round_to)
    for row in rows:
        if trained is not None and trained > row["planned_tokens"]:
            warn(f"--trained-tokens {format_count(trained)} is more than the {format_count(row['planned_tokens'])} tokens planned")
    general = format_count(G) if G is not None else "unlimited"
    emit(rows, fmt, title=f"Domain model for {title}: {format_count(U)} domain + {general} general tokens (BloombergGPT recipe)",
         labels=DOMAIN_LABELS, priority=DOMAIN_PRIORITY if fmt == "table" else None,
         footnotes=[f"N, D (A1, A2): fitted laws, Wu et al. 2023 Sec. 3.2 {FITTED_RANGE}; shape: Levine et al. 2020 as used by Wu et al. 2023."] if fmt == "table" else ())
    note("the recipe plans one pass over all tokens with a compute buffer; BloombergGPT trained 50.6B params (70 layers, 40 x 192 = 7,680) "
         "on 569B of 708B tokens (Table 4)")


@app.command("mix", help="""The data mixture that minimises a target loss, from the data mixing law fitted to your small runs.

Ye et al. 2024 (Data Mixing Laws, ICLR 2025): L_i = c_i + k_i exp(sum_j t_ij r_j) per validation domain i (a FITTED LAW,
fitted here to your runs; no constants ship), target sum_i s_i L_i (--weights, default equal). RUNS has one line per
run: its mixture in r_<domain> columns, its validation losses in loss_<domain> columns (or one loss column). The
authors' caveat holds: the optimum at the scale of your runs can move at the target scale.

Examples:

  llmplan data mix tests/data/mix_runs.csv

  llmplan data mix tests/data/mix_runs.csv --weights 0.3,0.7
""")
def mix(
    runs: Annotated[str, typer.Argument(help="Runs file (CSV, TSV, JSON lines, JSON): r_<domain> proportions and loss_<domain> losses.", show_default=False)],
    weights: Annotated[Optional[str], typer.Option("--weights", help="Weights of the validation losses, comma-separated in column order (default equal).", show_default=False)] = None,
    fmt: FormatOption = None,
) -> None:
    from llmplan.errors import InputError

    fmt = output_format(fmt)
    from llmplan.io.mix_runs import read_mix_runs

    data = read_mix_runs(runs)
    if weights is not None:
        try:
            s = [float(part) for part in weights.split(",")]
        except ValueError:
            raise InputError(f"--weights {weights!r} is not a list of numbers; e.g. --weights 0.3,0.7") from None
        if len(s) != len(data.targets):
            raise InputError(f"--weights gives {len(s)} weights for {len(data.targets)} loss columns ({', '.join(data.targets)})")
    else:
        s = [1.0] * len(data.targets)
    from llmplan.planning.data import mix_rows
    from llmplan.scaling.data_mixing import CAVEAT, fit_mixture

    fit = fit_mixture(data.domains, data.targets, data.R, data.losses)
    rows = mix_rows(fit, data.R, data.losses, s)
    for name, c, k, t, rmse in zip(fit.targets, fit.c, fit.k, fit.t, fit.rmse):
        terms = ", ".join(f"{d} {v:+.3g}" for d, v in zip(fit.domains, t))
        note(f"loss_{name}: c = {c:.4g}, k = {k:.4g}, t = ({terms}), RMSE {rmse:.3g} over {len(data.R)} runs (fitted)")
    if any(row["extrapolated"] for row in rows):
        warn("the optimum lies outside the shares your runs explored (key 'extrapolated'): an extrapolation of the fitted law")
    warn(CAVEAT)
    emit(rows, fmt, title=f"Mixture minimising the target loss (data mixing law fitted to {len(data.R)} runs)",
         labels={"mixture_share": "share", "runs_min_share": "min in runs", "runs_max_share": "max in runs", "best_run_share": "best run",
                 "loss": "predicted loss", "loss_best_run": "best run loss"})
