"""`llmplan fit`: fit a scaling law to the user's own training runs (parse + render; maths in llmplan.scaling.fit)."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from llmplan.cli import options
from llmplan.cli.common import emit, output_format, say
from llmplan.cli.options import FormatOption, PresetsOption

app = typer.Typer()

PlotOption = options.plot_option('the fit', ': observed vs predicted loss and the fitted frontier, or with --method isoflop the parabolas and their minima.')


@app.command(help="""Fit a scaling law L(N, D) = E + A/N^alpha + B/D^beta to your own training runs.

RUNS is a CSV, TSV, JSON-lines or JSON file (or - for stdin) with one run per row: parameters
(params, n, model_size, Model Size), tokens (tokens, d) or compute (flops, compute, Training FLOP;
then D = C/(6N)), and the final loss (loss, final_loss). The default method is Hoffmann et al.'s
Approach 3: the sum of Huber losses (delta 1e-3) on log loss, L-BFGS from all 4500 starts of the
paper's grid. --method isoflop is Approach 2 (parabolas per compute budget).

Examples:

  llmplan fit runs.csv

  llmplan fit svg_extracted_data.csv --drop-highest-loss 5 --bootstrap 1000 --seed 42

  llmplan fit runs.csv --save my-law.toml && llmplan optimal --budget 1e23 --law my-law.toml

  llmplan fit runs.csv --residuals -f csv > residuals.csv

  llmplan fit runs.csv --method isoflop --minima

  llmplan fit runs.csv --plot fit.png                # a picture of the fit

  cat runs.jsonl | llmplan fit - --grid 'alpha=0:1:0.25,beta=0:1:0.25'
""")
def fit(
    runs_file: Annotated[str, typer.Argument(metavar="RUNS", help="CSV, TSV, JSON-lines or JSON file of runs, or - for stdin.", show_default=False)],
    method: Annotated[str, typer.Option("--method", "-m", help="parametric (Approach 3) or isoflop (Approach 2).")] = "parametric",
    params_col: Annotated[Optional[str], typer.Option("--params-col", help="Column holding the parameter count N.", show_default=False)] = None,
    tokens_col: Annotated[Optional[str], typer.Option("--tokens-col", help="Column holding the training tokens D.", show_default=False)] = None,
    flops_col: Annotated[Optional[str], typer.Option("--flops-col", help="Column holding training FLOPs C (then D = C/(6N)).", show_default=False)] = None,
    loss_col: Annotated[Optional[str], typer.Option("--loss-col", help="Column holding the final loss.", show_default=False)] = None,
    drop_highest_loss: Annotated[int, typer.Option("--drop-highest-loss", help="Drop the K highest-loss runs first (the Epoch replication drops 5).", min=0)] = 0,
    min_flops: Annotated[Optional[str], typer.Option("--min-flops", help="Keep runs with C = 6ND at least this (1e18, 3pfd).", show_default=False)] = None,
    max_flops: Annotated[Optional[str], typer.Option("--max-flops", help="Keep runs with C = 6ND at most this.", show_default=False)] = None,
    skip_bad_rows: Annotated[bool, typer.Option("--skip-bad-rows", help="Skip (and count) rows with empty, non-numeric or non-positive values instead of stopping.")] = False,
    delta: Annotated[float, typer.Option("--delta", help="Huber delta on log-loss residuals (Hoffmann et al.: 1e-3).")] = 1e-3,
    grid: Annotated[Optional[str], typer.Option("--grid", help="Initialisation grid, e.g. 'alpha=0:2:0.5,beta=0|1,e=0' (START:STOP:STEP, V1|V2, or V; unnamed parameters keep the paper's values: 4500 starts).", show_default=False)] = None,
    bootstrap: Annotated[int, typer.Option("--bootstrap", help="Resample the runs K times and refit: adds <name>_se, _lo, _hi (95% percentile interval). At most 100,000.", min=0, max=100_000)] = 0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap resamples and of --sample (same seed, same numbers), 0 to 2**63-1.", min=0, max=2**63 - 1)] = 0,
    sample: Annotated[Optional[int], typer.Option("--sample", help="Fit a random subset of this many runs (seeded by --seed): a large runs file in a fraction of the time (the fit's cost grows with runs x starts).", min=1, show_default=False)] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Processes for the bootstrap.", min=1)] = 1,
    flops_tolerance: Annotated[float, typer.Option("--flops-tolerance", help="isoflop: runs within this relative distance of a budget's smallest FLOPs form one budget.")] = 0.1,
    minima: Annotated[bool, typer.Option("--minima", help="isoflop: list the per-budget minima as rows.")] = False,
    show_residuals: Annotated[bool, typer.Option("--residuals", help="List each run's observed and predicted loss instead of the fit.")] = False,
    save: Annotated[Optional[str], typer.Option("--save", help="Write the fitted law to this TOML file (for --law in optimal, loss, compare).", show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Let --save overwrite an existing file.")] = False,
    plot: PlotOption = None,
    fmt: FormatOption = None,
    presets: PresetsOption = None,
) -> None:
    from llmplan.commands.fit import RunsText, fit as compute
    from llmplan.errors import WorkError

    fmt = output_format(fmt)
    if runs_file == "-":  # stdin, read when the fit reads its runs (after its options are checked)
        from llmplan.cli.streams import read_stdin_text

        runs_file = RunsText(lambda: read_stdin_text("the runs on stdin"))
    try:
        rows = compute(runs_file, method=method, params_col=params_col, tokens_col=tokens_col, flops_col=flops_col, loss_col=loss_col,
                       drop_highest_loss=drop_highest_loss, min_flops=min_flops, max_flops=max_flops, skip_bad_rows=skip_bad_rows,
                       delta=delta, grid=grid, bootstrap=bootstrap, seed=seed, sample=sample, jobs=jobs, flops_tolerance=flops_tolerance,
                       minima=minima, show_residuals=show_residuals, save=save, force=force, plot=plot, presets=presets,
                       progress=_progress)
    except WorkError as error:  # a fit that did not converge: its rows, then the error (exit 1)
        if getattr(error, "rows", None) is None:
            raise
        _emit(error.rows, fmt)
        raise
    say(rows)
    _emit(rows, fmt)


def _emit(rows, fmt: str) -> None:
    """The rows of a fit as the table (or machine format) shows them; rows.detail says which."""
    asked = rows.detail
    mode = asked["mode"]
    if mode == "minima":
        emit(rows, fmt, title="IsoFLOP minima (Approach 2)",
             columns=["flops", "runs", "optimal_params", "optimal_tokens", "optimal_loss", "edge", "used"], priority=["flops", "optimal_params", "optimal_tokens", "optimal_loss"],
             labels={"optimal_params": "opt. N", "optimal_tokens": "opt. D", "optimal_loss": "min loss", "edge": "at edge"})
    elif mode == "isoflop":
        row = rows[0]
        emit(rows, fmt, title=f"IsoFLOP fit (Approach 2): N_opt = n_coef C^a, D_opt = d_coef C^b; {row['runs']} of {row['runs_given']} runs used",
             columns=["budgets", "runs", "a", "n_coef", "b", "d_coef"])
    elif mode == "residuals":
        emit(rows, fmt, title=f"Observed and predicted loss ({asked['source']})",
             columns=["line", "params", "tokens", "flops", "loss", "predicted_loss", "log_residual"],
             priority=["line", "params", "tokens", "loss", "predicted_loss", "log_residual"])
    else:
        row, bootstrap = asked["row"], asked["bootstrap"]
        columns = ["E", "A", "B", "alpha", "beta", "a", "b", "G"] + [k for k in row if k.startswith("tokens_per_param_") and "_" not in k[len("tokens_per_param_"):]]
        title = f"Fit of {asked['source']} (Approach 3, {asked['runs']} runs, {asked['starts']} starts)"
        if fmt == "table":  # one row of many numbers reads better as one line per quantity
            emit(_vertical(row, columns + ["objective", "runs", "converged"]), fmt, title=title + (f", {bootstrap} bootstrap refits, 95% intervals" if bootstrap else ""))
        else:
            emit(rows, fmt, title=title)


def _vertical(row: dict, keys: list[str]) -> list[dict]:
    """The table view of the fit: one line per quantity, with its bootstrap SE and interval if any."""
    out = []
    for key in keys:
        line = {"quantity": key.replace("tokens_per_param_", "tokens per param at C=").replace("C=1e", "C=1e"), "value": row[key]}
        if f"{key}_se" in row:
            line.update({"se": row[f"{key}_se"], "lo_95": row[f"{key}_lo"], "hi_95": row[f"{key}_hi"]})
        out.append(line)
    return out


# How long a fit will take is said by the function (llmplan.commands.fit: MEASURE_ABOVE, SLOW_FIT_SECONDS).


class _progress:
    """A rich progress bar on stderr (only on a terminal, not with --quiet); yields advance(n), whose
    .to(done, total) sets the bar to done (a callback for the core's progress hooks). What the command
    line passes as the fit function's `progress` (llmplan.commands.fit.fit)."""

    def __init__(self, description: str, total: int | None) -> None:
        self.description, self.total, self.bar = description, total, None

    def __enter__(self):
        stream = sys.stderr
        try:
            tty = stream.isatty()
        except (AttributeError, ValueError):
            tty = False
        from llmplan.cli.common import quiet

        if not tty or quiet():
            return _Advance(None, None)
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()] if self.total else [SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn()]
        self.bar = Progress(*columns, console=Console(file=stream), transient=True)
        self.bar.start()
        task = self.bar.add_task(self.description, total=self.total)
        return _Advance(self.bar, task)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


class _Advance:
    """advance(n) moves the bar on by n; advance.to(done, total) sets it (nothing without a bar)."""

    def __init__(self, bar, task) -> None:
        self.bar, self.task = bar, task

    def __call__(self, n: int) -> None:
        if self.bar is not None:
            self.bar.advance(self.task, n)

    def to(self, done: int, total: int) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=done, total=total)
