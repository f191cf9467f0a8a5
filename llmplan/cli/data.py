"""`llmplan data filter|domain|mix`: how hard to filter a pool, how to size a domain model, which mixture."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from llmplan.cli.common import emit, output_format, say
from llmplan.cli import options
from llmplan.cli.options import FormatOption, PresetsOption

app = typer.Typer(help="Data: how hard to filter a pool, how to size a domain model (BloombergGPT's recipe), which mixture.", no_args_is_help=True)

TokensOption = options.tokens_option("Training tokens instead of the law's compute-optimal count (N = budget / 6D); with --buckets the target tokens.")

BudgetOption = Annotated[Optional[str], typer.Option("--budget", "-b", help="Compute budget: FLOPs (1e24) or PF-days (3000pfd); or give hardware time (--gpu with --gpu-hours, or --gpus and --days).", show_default=False)]


# The recipe's 30% buffer already covers failures, so its goodput defaults to 1 (its own help).
_DOMAIN_TIME = options.with_option(options.HARDWARE_TIME, "goodput", Annotated[Optional[str], typer.Option(
    "--goodput", help="Share of calendar time spent training (default 1 here: the recipe's buffer covers failures).", show_default=False)])


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
    from llmplan.commands.data import data_filter
    from llmplan.units import format_count

    fmt = output_format(fmt)
    rows = data_filter(pool=pool, keep=keep, budget=budget, tokens=tokens, max_cost=max_cost, classifier_hours=classifier_hours,
                       priors=priors, buckets=buckets, bucket_tokens=bucket_tokens, presets=presets, **hardware_time)
    asked = rows.detail
    if asked["mode"] == "priors":
        _said(rows, fmt)
        _emit_priors(rows, fmt)
    elif asked["mode"] == "buckets":
        say(rows)
        emit(rows, fmt, title=f"Top quality buckets for {format_count(asked['tokens'])} tokens, {format_count(asked['bucket_tokens'])} unique tokens each (fitted utility decay)")
    else:
        from llmplan.scaling.data_filtering import LAW_RANGE

        emit(rows, fmt, title=f"Filtering a {format_count(asked['pool'])}-token pool for {asked['budget']} (predictions of the repetition law)",
             labels=FILTER_LABELS, priority=FILTER_PRIORITY if fmt == "table" else None,
             columns=FILTER_PRIORITY if fmt == "table" else None,
             footnotes=[f"Law: Muennighoff et al. 2023 C4 fit, {LAW_RANGE}; absolute losses are for comparison, not observed values."] if fmt == "table" else ())
        _said(rows, fmt)  # after the table, before the priors' (the notes follow both)
        if fmt == "table":
            _emit_priors(asked["priors"], fmt)


def _said(rows, fmt: str) -> None:
    """The notes of `data filter`'s rows, less those a table shows as tables or footnotes: the pointer to
    the priors (printed after the table) and NO_MULTIPLIER_LAW (the priors' footnote)."""
    from llmplan.commands import notes
    from llmplan.commands.data import PRIORS_NOTE
    from llmplan.scaling.data_priors import NO_MULTIPLIER_LAW

    for prefix, message in rows.said:
        if fmt != "table" or message not in (PRIORS_NOTE, NO_MULTIPLIER_LAW):
            notes.say(prefix, message)


def _emit_priors(rows, fmt: str) -> None:
    from llmplan.scaling.data_priors import NO_MULTIPLIER_LAW

    emit(rows, fmt, title="Published filtering points: PRIORS, not predictions (never added to the loss)",
         columns=["keep", "gain", "paper", "evidence", "model", "source", "prior"] if fmt == "table" else None,
         priority=["keep", "gain", "paper", "evidence", "model", "source", "prior"] if fmt == "table" else None,
         footnotes=[NO_MULTIPLIER_LAW + "."] if fmt == "table" else ())


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
    from llmplan.commands.data import data_domain
    from llmplan.scaling.domain import FITTED_RANGE
    from llmplan.units import format_count

    fmt = output_format(fmt)
    rows = data_domain(domain_tokens=domain_tokens, general_tokens=general_tokens, budget=budget, max_domain_epochs=max_domain_epochs,
                       buffer=buffer, no_checkpointing=no_checkpointing, trained_tokens=trained_tokens, vocab=vocab, round_to=round_to,
                       presets=presets, **hardware_time)
    say(rows)
    asked = rows.detail
    general = format_count(asked["general_tokens"]) if asked["general_tokens"] is not None else "unlimited"
    emit(rows, fmt, title=f"Domain model for {asked['budget']}: {format_count(asked['domain_tokens'])} domain + {general} general tokens (BloombergGPT recipe)",
         labels=DOMAIN_LABELS, priority=DOMAIN_PRIORITY if fmt == "table" else None,
         footnotes=[f"N, D (A1, A2): fitted laws, Wu et al. 2023 Sec. 3.2 {FITTED_RANGE}; shape: Levine et al. 2020 as used by Wu et al. 2023."] if fmt == "table" else ())


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
    from llmplan.commands.data import data_mix

    fmt = output_format(fmt)
    rows = data_mix(runs, weights=weights)
    say(rows)
    emit(rows, fmt, title=f"Mixture minimising the target loss (data mixing law fitted to {rows.detail['runs']} runs)",
         labels={"mixture_share": "share", "runs_min_share": "min in runs", "runs_max_share": "max in runs", "best_run_share": "best run",
                 "loss": "predicted loss", "loss_best_run": "best run loss"})
