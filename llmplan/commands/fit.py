"""`llmplan fit` as a function: fit a scaling law to the user's own training runs (maths in llmplan.scaling.fit)."""

from __future__ import annotations

from typing import Any, Callable, Optional

from llmplan.commands import args
from llmplan.commands.notes import note, warn, warn_counted
from llmplan.commands.result import Rows, command
from llmplan.errors import InputError, WorkError

METHODS = ("parametric", "isoflop")

# A fit expected to take longer than this says so before it starts, with how to make it faster.
SLOW_FIT_SECONDS = 30.0
MEASURE_ABOVE = 2_000_000  # runs x starts below which a fit takes seconds (50 runs x 4,500 starts: ~3 s)


class RunsText:
    """Runs given as text instead of a file (what `llmplan fit -` reads from stdin): `text` is the text, or a
    function returning it, called when the fit reads its runs (after its options are checked); `source`
    names it in messages."""

    def __init__(self, text: Any, source: str = "<stdin>") -> None:
        self.text, self.source = text, source

    def read(self) -> str:
        return self.text() if callable(self.text) else self.text


class _NoProgress:
    """The progress of a fit that nobody watches: `progress(description, total)` as a context manager whose
    value advance(n) moves a bar on by n and advance.to(done, total) sets it (here: nothing)."""

    def __init__(self, description: str, total: Optional[int]) -> None:
        pass

    def __enter__(self) -> "_NoProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def __call__(self, n: int) -> None:
        return None

    def to(self, done: int, total: int) -> None:
        return None


@command
def fit(
    runs_file: Any = None, *, method: str = "parametric", params_col: Any = None, tokens_col: Any = None, flops_col: Any = None,
    loss_col: Any = None, drop_highest_loss: Any = 0, min_flops: Any = None, max_flops: Any = None, skip_bad_rows: Any = False,
    delta: Any = 1e-3, grid: Any = None, bootstrap: Any = 0, seed: Any = 0, sample: Any = None, jobs: Any = 1,
    flops_tolerance: Any = 0.1, minima: Any = False, show_residuals: Any = False, save: Any = None, force: Any = False,
    plot: Any = None, presets: Any = None, progress: Optional[Callable[[str, Optional[int]], Any]] = None,
    residuals: Any = None,
) -> Rows:
    """Fit a scaling law L(N, D) = E + A/N^alpha + B/D^beta to your own runs (`llmplan fit RUNS`):
    `runs_file` a CSV, TSV, JSON-lines or JSON file, a list of dicts (records) with the same columns
    (params, tokens or flops, loss), or a RunsText; method="isoflop" for Approach 2 (minima=True: the
    per-budget minima); show_residuals=True or residuals=True (--residuals): each run's observed and predicted loss.

    `progress` (the only keyword the command line has no option for): progress(description, total)
    returning a context manager whose value is advance(n), with advance.to(done, total); the command line
    passes its terminal bar (reading the runs, the starts of the fit, the bootstrap refits). Default: none.

    A fit that does not converge raises WorkError with its rows as the error's `.rows` (the command line
    prints them, then exits 1). `detail`: {"mode": "parametric" | "residuals" | "isoflop" | "minima",
    "source", "runs", "starts", "bootstrap"}.

    Example: llmplan.fit("runs.csv")[0]["alpha"]; llmplan.fit([{"params": 7e7, "tokens": 1e9, "loss": 3.9}, ...])
    """
    from llmplan.units import parse_compute

    progress = progress or _NoProgress
    drop_highest_loss, bootstrap, seed, sample, jobs = (args.integer(value, name) for value, name in (
        (drop_highest_loss, "--drop-highest-loss"), (bootstrap, "--bootstrap"), (seed, "--seed"), (sample, "--sample"), (jobs, "--jobs")))
    delta, flops_tolerance = args.number(delta, "--delta"), args.number(flops_tolerance, "--flops-tolerance")
    if residuals is not None:  # --residuals by its long name (show_residuals is the command line's keyword)
        if show_residuals:
            raise InputError("give residuals= or show_residuals=, not both")
        show_residuals = residuals
    skip_bad_rows, minima, show_residuals, force = (args.switch(value, name) for value, name in (
        (skip_bad_rows, "--skip-bad-rows"), (minima, "--minima"), (show_residuals, "--residuals"), (force, "--force")))
    min_flops, max_flops, grid, save = args.text(min_flops), args.text(max_flops), args.text(grid), args.text(save)
    for value, name, low, high in ((drop_highest_loss, "--drop-highest-loss", 0, None), (bootstrap, "--bootstrap", 0, 100_000),
                                   (seed, "--seed", 0, 2**63 - 1), (sample, "--sample", 1, None), (jobs, "--jobs", 1, None)):
        if value is not None and (value < low or high is not None and value > high):
            raise InputError(f"{name} {value} is not in the range {low} to {high}" if high is not None else f"{name} must be at least {low}, not {value}")
    if runs_file is None:
        raise InputError("Missing argument 'RUNS'. (see 'llmplan fit --help')")
    method = str(method).strip().lower()
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
    from llmplan.io import runs as runs_mod
    from llmplan.scaling.fit import bootstrap as boots, isoflop, lbfgs, parametric as core

    grid_spec = lbfgs.parse_grid(grid)

    columns = dict(params_col=params_col, tokens_col=tokens_col, flops_col=flops_col, loss_col=loss_col, skip_bad_rows=skip_bad_rows)
    if isinstance(runs_file, (list, tuple)):  # records: one dict per run
        import json

        text = "".join(json.dumps(record, default=float) + "\n" for record in runs_file)
        with progress("reading <records>", None):
            runs = runs_mod.read_runs(text, "<records>", **columns)
    elif isinstance(runs_file, RunsText):
        text = runs_file.read()
        with progress(f"reading {runs_file.source}", None):
            runs = runs_mod.read_runs(text, runs_file.source, **columns)
    else:
        import os

        path = os.fspath(runs_file)
        if path == "-":
            raise InputError("RUNS is '-' (stdin) only on the command line; give a file, a list of dicts or llmplan.commands.fit.RunsText")
        with progress(f"reading {path}", None):  # a spinner: a million-row file takes seconds
            runs = runs_mod.read_runs_file(path, None, **columns)
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
    detail = {"source": runs.source, "runs": len(runs), "starts": None, "bootstrap": bootstrap}

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
            return Rows(result.minima, detail={**detail, "mode": "minima"})
        if result.row["budgets"] < 2:
            raise WorkError("the IsoFLOP fit needs at least 2 budgets with 3 or more runs each and the minimum inside the sampled sizes")
        return Rows([result.row], detail={**detail, "mode": "isoflop"})

    problem = core.identifiability_problem(runs.N, runs.D)
    if problem:
        raise InputError(f"cannot fit {runs.source}: {problem}")
    for message in core.data_warnings(runs.N, runs.D):
        warn(message)
    starts = lbfgs.grid_size(grid_spec)
    detail["starts"] = starts
    _say_how_long(core, lbfgs, len(runs), grid_spec)
    with progress(f"fitting {len(runs):,} runs: starts done", starts) as advance:
        result = core.fit_parametric(runs.N, runs.D, runs.L, delta=delta, grid=grid_spec, progress=advance.to)
    problem = core.exponent_problem(result)
    if problem:
        raise WorkError(f"no usable law from {runs.source}: {problem}; check the runs (or --drop-highest-loss, --grid)")
    if show_residuals:
        rows = Rows(core.residual_rows(result.theta, runs.lines, runs.N, runs.D, runs.L), detail={**detail, "mode": "residuals"})
    else:
        row = core.parametric_row(result)
        if bootstrap:
            with progress(f"bootstrap: {bootstrap} refits", bootstrap) as advance:
                boot = boots.bootstrap_parametric(runs.N, runs.D, runs.L, result, bootstrap, seed, jobs=jobs, progress=advance)
            row.update(boots.bootstrap_summary(boot))
            row["seed"] = seed
            if row["bootstrap_converged"] < bootstrap:
                warn(f"{bootstrap - row['bootstrap_converged']} of {bootstrap} bootstrap refits did not reach the gradient tolerance")
        rows = Rows([row], detail={**detail, "mode": "parametric", "row": row})
    if plot is not None:
        from llmplan.io.plots import plot_fit
        from llmplan.scaling.laws import Law

        fitted = Law(id="fit", name="fit", form="chinchilla", constants={k: getattr(result, k) for k in ("E", "A", "B", "alpha", "beta")})
        predicted = core.residuals(result.theta, runs.N, runs.D, runs.L)
        plot_fit(plot, runs.N, runs.D, runs.L, predicted, fitted, title=f"Fit of {runs.source} (Approach 3, {len(runs)} runs)")
        note(f"wrote {plot}")
    if save:
        if not result.converged:
            raise _with_rows(WorkError(f"not saving {save}: the fit did not converge (largest gradient {result.grad_max:.3g})"), rows)
        _save(save, force, runs, result, delta)
        note(f"wrote {save}; use it with --law {save}")
    if not result.converged:
        raise _with_rows(WorkError(f"the fit did not converge: largest gradient {result.grad_max:.3g} (scale {result.grad_scale:.3g}); try another --grid or --delta"), rows)
    return rows


def _with_rows(error: WorkError, rows: Rows) -> WorkError:
    """The error of a fit that did not converge, holding the rows it did compute (error.rows)."""
    error.rows = rows  # type: ignore[attr-defined]
    return error


def _warn_per_kind(problems: list, fitted: int) -> None:
    """The IsoFLOP fit's per-budget warnings, one line per kind ('30 of 33 budgets (...): skipped')."""
    per_budget = [(p.subject, p.what) for p in problems if p.subject is not None]
    skipped = {p.subject for p in problems if p.subject is not None and p.skipped}
    warn_counted(per_budget, fitted + len(skipped), "budgets")  # budgets with a parabola + those skipped
    for p in problems:
        if p.subject is None:
            warn(p.message)


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
