"""Progress on long work (fit): a bar on stderr only on a terminal and never with --quiet; a fit that
will take long says so up front, with how to make it faster. No timing is asserted."""

from __future__ import annotations

import io
import json
import sys

import pytest

from conftest import DATA

RUNS = str(DATA / "fit_runs_exact.csv")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _run(args, tty):
    from llmplan.cli import main

    out, err = io.StringIO(), (_Terminal() if tty else io.StringIO())
    saved = sys.stdout, sys.stderr, sys.stdin
    sys.stdout, sys.stderr, sys.stdin = out, err, io.StringIO("")
    try:
        try:
            main(list(args))
            code = 0
        except SystemExit as done:
            code = done.code
    finally:
        sys.stdout, sys.stderr, sys.stdin = saved
    return code, out.getvalue(), err.getvalue()


def test_the_fit_shows_a_bar_of_starts_on_a_terminal(monkeypatch):
    monkeypatch.setenv("TERM", "xterm")
    code, out, err = _run(["fit", RUNS, "--grid", "a=0|10,b=0|10", "--bootstrap", "20", "-f", "json"], tty=True)
    assert code == 0
    assert "starts done" in err and "bootstrap: 20 refits" in err
    assert json.loads(out)[0]["method"] == "parametric"  # the result is untouched


@pytest.mark.parametrize("args, tty", [([], False), (["--quiet"], True)])
def test_no_bar_in_a_pipe_or_with_quiet(monkeypatch, args, tty):
    monkeypatch.setenv("TERM", "xterm")
    code, out, err = _run(["fit", RUNS, "--grid", "a=0|10,b=0|10", "--bootstrap", "20", *args, "-f", "json"], tty=tty)
    assert code == 0
    assert "starts done" not in err and "refits" not in err and "\x1b[" not in err


def test_the_core_reports_starts_as_they_stop():
    from llmplan.io.runs import read_runs_file
    from llmplan.scaling.fit import lbfgs, parametric

    runs = read_runs_file(RUNS, None)
    seen = []
    grid = lbfgs.parse_grid("a=0|10,b=0|10")
    parametric.fit_parametric(runs.N, runs.D, runs.L, grid=grid, progress=lambda done, total: seen.append((done, total)))
    starts = lbfgs.grid_size(grid)
    assert seen and all(total == starts for _, total in seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and seen[-1][0] == starts


def test_a_long_fit_says_up_front_how_long_and_how_to_go_faster(cli, monkeypatch):
    from llmplan.commands import fit as fit_command
    from llmplan.scaling.fit import parametric

    monkeypatch.setattr(fit_command, "MEASURE_ABOVE", 0)
    monkeypatch.setattr(parametric, "estimate_seconds", lambda runs, starts: (3600.0 * runs / 50, 1e-8))
    result = cli(["fit", RUNS, "-f", "json"])
    assert result.code == 0
    line = [l for l in result.stderr.splitlines() if "will take about" in l]
    assert line and "will take about 1.0 h here" in line[0], result.stderr
    assert "--grid 'a=5|15,b=5|15': 500 of the 4,500 starts" in line[0]


def test_the_estimate_is_measured_and_grows_with_the_work():
    from llmplan.scaling.fit import parametric

    seconds, per = parametric.estimate_seconds(1000, 4500)
    assert per > 0 and seconds == pytest.approx(per * 1000 * 4500 * parametric.EVALS_PER_START)


def test_sample_fits_a_seeded_subset(cli):
    a = cli(["fit", RUNS, "--sample", "30", "--seed", "7", "-f", "json"])
    b = cli(["fit", RUNS, "--sample", "30", "--seed", "7", "-f", "json"])
    assert a.code == 0 and json.loads(a.stdout) == json.loads(b.stdout)
    assert json.loads(a.stdout)[0]["runs"] == 30
    assert "--sample 30: a random 30 of the 50 runs (--seed 7)" in a.stderr
