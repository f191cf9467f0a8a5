"""`llmplan fit`: fit a scaling law to the user's own training runs (parse + render; maths in llmplan.scaling.fit)."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from llmplan.cli import options
from llmplan.cli.common import emit, note, output_format, warn
from llmplan.cli.options import FormatOption, PresetsOption

app = typer.Typer()

PlotOption = options.plot_option('the fit', ': observed vs predicted loss and the fitted frontier, or with --method isoflop the parabolas and their minima.')

METHODS = ("parametric", "isoflop")


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
    from llmplan.io import runs as runs_mod
    from llmplan.errors import InputError, WorkError
    from llmplan.units import parse_compute

    fmt = output_format(fmt)
    method = method.strip().lower()
    if method not in METHODS:
        raise InputError(f"--method {method!r} is not one of {', '.join(METHODS)}")
    if not (delta > 0 and delta < 1):
        raise InputError(f"--delta {delta!r} must be between 0 and 1 (Hoffmann et al. use 1e-3)")
    if not flops_tolerance > 0:
        raise InputError(f"--flops-tolerance {flops_tolerance!r} must be positive (e.g. 0.1)")
    if method == "isoflop" and (bootstrap or save or show_residuals or grid):
        raise InputError("--bootstrap, --save, --residuals and --grid apply to --method parametric")
    if minima and method != "isoflop":
        raise InputError("--minima applies to --method isoflop")
    if plot is not None:
        from llmplan.io.plots import check_plot_path, require_matplotlib

        check_plot_path(plot)
        require_matplotlib()
    if save:  # before the work: a path that cannot be written fails now, not after the fit
        from llmplan.io.files import check_target

        check_target(save, force)
    lo = parse_compute(min_flops) if min_flops is not None else None
    hi = parse_compute(max_flops) if max_flops is not None else None
    from llmplan.scaling.fit import bootstrap as boots, isoflop, lbfgs, parametric as core

    grid_spec = lbfgs.parse_grid(grid)

    stdin_text = None
    if runs_file == "-":
        from llmplan.cli.streams import read_stdin_text

        stdin_text = read_stdin_text("the runs on stdin")
    with _progress(f"reading {runs_file}", None):  # a spinner: a million-row file takes seconds
        runs = runs_mod.read_runs_file(
            runs_file, stdin_text,
            params_col=params_col, tokens_col=tokens_col, flops_col=flops_col, loss_col=loss_col, skip_bad_rows=skip_bad_rows,
        )
    if runs.skipped:
        note(f"skipped {len(runs.skipped)} bad row(s) (--skip-bad-rows); first: {runs.skipped[0]}")
    runs = runs_mod.drop_highest_loss(runs, drop_highest_loss)
    runs = runs_mod.filter_flops(runs, lo, hi)
    for description in runs.filters:
        note(description)
    if sample is not None and sample < len(runs):
        import random

        keep = sorted(random.Random(seed).sample(range(len(runs)), sample))
        runs = runs.subset(keep, f"--sample {sample}: a random {sample:,} of the {len(runs):,} runs (--seed {seed})")
        note(runs.filters[-1])
    note(f"{len(runs)} runs from {runs.source} (columns: {', '.join(f'{k}={v!r}' for k, v in runs.columns.items())})")
    if len(runs) == 0:
        raise InputError(f"no runs left to fit in {runs.source}")

    if method == "isoflop":
        result = isoflop.fit_isoflop(runs.N, runs.D, runs.L, flops_tolerance)
        _warn_per_kind(result.problems, len(result.minima))
        if plot is not None:
            from llmplan.io.plots import isoflop_groups, plot_isoflop

            groups = isoflop_groups(runs.N, runs.D, runs.L, flops_tolerance)
            if groups:
                plot_isoflop(plot, groups, result.minima, power_law=(result.row["n_coef"], result.row["a"]), title=f"IsoFLOP fit of {runs.source}")
                note(f"wrote {plot}")
            else:
                warn(f"no budget has 3 or more runs: nothing to draw, {plot} not written")
        if minima:
            emit(result.minima, fmt, title="IsoFLOP minima (Approach 2)",
                 columns=["flops", "runs", "optimal_params", "optimal_tokens", "optimal_loss", "edge", "used"], priority=["flops", "optimal_params", "optimal_tokens", "optimal_loss"],
                 labels={"optimal_params": "opt. N", "optimal_tokens": "opt. D", "optimal_loss": "min loss", "edge": "at edge"})
            return
        if result.row["budgets"] < 2:
            raise WorkError("the IsoFLOP fit needs at least 2 budgets with 3 or more runs each and the minimum inside the sampled sizes")
        emit([result.row], fmt, title=f"IsoFLOP fit (Approach 2): N_opt = n_coef C^a, D_opt = d_coef C^b; {result.row['runs']} of {result.row['runs_given']} runs used",
             columns=["budgets", "runs", "a", "n_coef", "b", "d_coef"])
        return

    problem = core.identifiability_problem(runs.N, runs.D)
    if problem:
        raise InputError(f"cannot fit {runs.source}: {problem}")
    for message in core.data_warnings(runs.N, runs.D):
        warn(message)
    starts = lbfgs.grid_size(grid_spec)
    _say_how_long(core, lbfgs, len(runs), grid_spec)
    with _progress(f"fitting {len(runs):,} runs: starts done", starts) as advance:
        result = core.fit_parametric(runs.N, runs.D, runs.L, delta=delta, grid=grid_spec, progress=advance.to)
    problem = core.exponent_problem(result)
    if problem:
        raise WorkError(f"no usable law from {runs.source}: {problem}; check the runs (or --drop-highest-loss, --grid)")
    if show_residuals:
        rows = core.residual_rows(result.theta, runs.lines, runs.N, runs.D, runs.L)
        emit(rows, fmt, title=f"Observed and predicted loss ({runs.source})",
             columns=["line", "params", "tokens", "flops", "loss", "predicted_loss", "log_residual"],
             priority=["line", "params", "tokens", "loss", "predicted_loss", "log_residual"])
    else:
        row = core.parametric_row(result)
        if bootstrap:
            with _progress(f"bootstrap: {bootstrap} refits", bootstrap) as advance:
                boot = boots.bootstrap_parametric(runs.N, runs.D, runs.L, result, bootstrap, seed, jobs=jobs, progress=advance)
            row.update(boots.bootstrap_summary(boot))
            row["seed"] = seed
            if row["bootstrap_converged"] < bootstrap:
                warn(f"{bootstrap - row['bootstrap_converged']} of {bootstrap} bootstrap refits did not reach the gradient tolerance")
        columns = ["E", "A", "B", "alpha", "beta", "a", "b", "G"] + [k for k in row if k.startswith("tokens_per_param_") and "_" not in k[len("tokens_per_param_"):]]
        title = f"Fit of {runs.source} (Approach 3, {len(runs)} runs, {starts} starts)"
        if fmt == "table":  # one row of many numbers reads better as one line per quantity
            emit(_vertical(row, columns + ["objective", "runs", "converged"]), fmt, title=title + (f", {bootstrap} bootstrap refits, 95% intervals" if bootstrap else ""))
        else:
            emit([row], fmt, title=title)
    if plot is not None:
        from llmplan.scaling.laws import Law
        from llmplan.io.plots import plot_fit

        fitted = Law(id="fit", name="fit", form="chinchilla", constants={k: getattr(result, k) for k in ("E", "A", "B", "alpha", "beta")})
        predicted = core.residuals(result.theta, runs.N, runs.D, runs.L)
        plot_fit(plot, runs.N, runs.D, runs.L, predicted, fitted, title=f"Fit of {runs.source} (Approach 3, {len(runs)} runs)")
        note(f"wrote {plot}")
    if save:
        if not result.converged:
            raise WorkError(f"not saving {save}: the fit did not converge (largest gradient {result.grad_max:.3g})")
        _save(save, force, runs, result, delta)
        note(f"wrote {save}; use it with --law {save}")
    if not result.converged:
        raise WorkError(f"the fit did not converge: largest gradient {result.grad_max:.3g} (scale {result.grad_scale:.3g}); try another --grid or --delta")


def _warn_per_kind(problems: list, fitted: int) -> None:
    """The IsoFLOP fit's per-budget warnings, one line per kind ('30 of 33 budgets (...): skipped')."""
    from llmplan.cli.common import warn_counted

    per_budget = [(p.subject, p.what) for p in problems if p.subject is not None]
    skipped = {p.subject for p in problems if p.subject is not None and p.skipped}
    warn_counted(per_budget, fitted + len(skipped), "budgets")  # budgets with a parabola + those skipped
    for p in problems:
        if p.subject is None:
            warn(p.message)


def _vertical(row: dict, keys: list[str]) -> list[dict]:
    """The table view of the fit: one line per quantity, with its bootstrap SE and interval if any."""
    out = []
    for key in keys:
        line = {"quantity": key.replace("tokens_per_param_", "tokens per param at C=").replace("C=1e", "C=1e"), "value": row[key]}
        if f"{key}_se" in row:
            line.update({"se": row[f"{key}_se"], "lo_95": row[f"{key}_lo"], "hi_95": row[f"{key}_hi"]})
        out.append(line)
    return out


def _save(path: str, force: bool, runs, result, delta: float) -> None:
    import datetime
    import re
    from pathlib import Path

    from llmplan.io.files import write_whole
    from llmplan.scaling.fit import parametric as core

    law_id = re.sub(r"[^A-Za-z0-9_-]+", "-", Path(path).stem).strip("-") or "fit"
    today = datetime.date.today().isoformat()
    filters = "; ".join(runs.filters)
    source = (
        f"llmplan fit {runs.source}, {today}, sum of Huber (delta {delta:g}), {result.starts}-start grid"
        + (f"; {filters}" if filters else "")
    )
    text = core.law_toml(law_id, f"Fit of {runs.source} (Approach 3, {result.runs} runs)", result, source, runs.N, runs.D)
    write_whole(path, text, force=force)


# A fit expected to take longer than this says so before it starts, with how to make it faster.
SLOW_FIT_SECONDS = 30.0
MEASURE_ABOVE = 2_000_000  # runs x starts below which a fit takes seconds (50 runs x 4,500 starts: ~3 s)


def _say_how_long(core, lbfgs, runs: int, grid: dict) -> None:
    """Up front, for a fit that will take a while: about how long here, and the two ways to shorten it."""
    from llmplan.units import format_duration

    starts = lbfgs.grid_size(grid)
    if runs * starts < MEASURE_ABOVE:  # a few seconds at most: not worth measuring
        return
    seconds, per = core.estimate_seconds(runs, starts)
    if seconds < SLOW_FIT_SECONDS:
        return
    sample = max(1000, int(runs * SLOW_FIT_SECONDS / seconds) // 1000 * 1000)
    faster = []
    if sample < runs:
        faster.append(f"--sample {sample} fits a random {sample:,} of the runs (about {format_duration(seconds * sample / runs)})")
    coarse = lbfgs.grid_size({**grid, "a": (5.0, 15.0), "b": (5.0, 15.0)})
    if coarse < starts:
        faster.append(f"a coarser --grid has fewer starts (e.g. --grid 'a=5|15,b=5|15': {coarse:,} of the {starts:,} starts, "
                      f"about {format_duration(seconds * coarse / starts)})")
    note(f"fitting {runs:,} runs from {starts:,} starts will take about {format_duration(seconds)} here "
         f"({per * 1e9:.0f} ns per run, start and evaluation, measured now); faster: " + "; or ".join(faster))


class _progress:
    """A rich progress bar on stderr (only on a terminal, not with --quiet); yields advance(n), whose
    .to(done, total) sets the bar to done (a callback for the core's progress hooks)."""

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
