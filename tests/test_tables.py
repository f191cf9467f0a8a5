"""Every command's default table at 80, 100 and 120 columns: pinned exactly, never wider than the
terminal, never a number or an identifier split, and every cell the humanised value of its twin in
`--format json`.

The pinned tables live in tests/data/tables/CASE@WIDTH.txt. After a deliberate change, rewrite
them with `LLMPLAN_UPDATE_TABLES=1 .venv/bin/python -m pytest tests/test_tables.py` and read the diff.
"""

from __future__ import annotations

import json
import os
import re

import pytest

from conftest import DATA, run_cli
from llmplan.io.render import format_column

WIDTHS = (80, 100, 120)
PINNED = DATA / "tables"

# One default invocation per command (the first README example, or the one the issue names).
CASES: dict[str, list[str]] = {
    "optimal": ["optimal", "--budget", "3000pfd"],
    "optimal-sweep": ["optimal", "--budget", "1e21:1e25:5", "--law", "epoch-2024"],
    "optimal-shape": ["optimal", "--budget", "1e24", "--shape"],
    "optimal-all": ["optimal", "--budget", "5.76e23", "--law", "all"],
    "loss": ["loss", "--params", "70B", "--tokens", "1.4T"],
    "loss-all": ["loss", "--params", "70B", "--tokens", "1.4T", "--law", "all"],
    "compute": ["compute", "--params", "7B", "--tokens", "2T", "--gpu", "a100", "--gpus", "1024", "--price", "2.0"],
    "compare": ["compare"],
    "fit": ["fit", str(DATA / "fit_runs_noisy.csv")],
    "fit-isoflop-minima": ["fit", str(DATA / "isoflop_runs.csv"), "--method", "isoflop", "--minima"],
    "arch": ["arch", "--preset", "llama-2-70b"],
    "arch-many": ["arch", "--preset", "gpt-3-175b", "--preset", "bloom-176b", "--preset", "deepseek-v3"],
    "arch-target": ["arch", "--target", "7B"],
    "memory": ["memory", "--preset", "llama-2-7b", "--batch", "8", "--context", "4096", "--gpu", "h100"],
    "dtypes": ["dtypes"],
    "gpus": ["gpus"],
    "presets-list": ["presets", "list", "--kind", "models"],
    "presets-show": ["presets", "show", "llama-2-7b"],
    # Commands other branches add (issues 11, 12, 17): skipped until registered; pin them once merged.
    "throughput": ["throughput", "--preset", "llama-2-7b", "--gpu", "a100", "--gpus", "64", "--global-batch", "512", "--zero", "3", "--micro-batch", "2"],
    "layout": ["layout", "--preset", "llama-2-70b", "--gpu", "a100", "--gpus", "512", "--global-batch", "1024", "--top", "3"],
    "plan": ["plan", "--gpu", "h100", "--gpus", "256", "--days", "30"],
    "serve": ["serve", "--preset", "llama-3-8b", "--gpu", "h100", "--input", "2048", "--output", "256", "--batch", "1:128"],
    "data-filter": ["data", "filter", "--pool", "15T", "--budget", "1e24"],
    "data-domain": ["data", "domain", "--domain-tokens", "363B", "--general-tokens", "345B", "--budget", "4.733e23,1e24"],
    "data-mix": ["data", "mix", str(DATA / "mix_runs.csv")],
}
# Tables that are a different view of their rows (memory: one line per part; fit, plan and presets
# show: the one row turned into quantity/value lines by the command), so cells have no twin.
NOT_TWINS = {"memory", "fit", "presets-show", "plan", "data-filter"}  # data filter: predictions, then the priors (rows of their own: --priors)


def table(args: list[str], width: int, monkeypatch) -> str:
    from llmplan.cli import COMMANDS

    if args[0] not in COMMANDS:
        pytest.skip(f"llmplan {args[0]} is not on this branch")
    monkeypatch.setenv("COLUMNS", str(width))
    for name in ("LLMPLAN_FORMAT", "LLMPLAN_PRESETS", "LLMPLAN_QUIET"):
        monkeypatch.delenv(name, raising=False)
    result = run_cli([*args, "-f", "table"])
    assert result.code == 0, result.stderr
    return result.stdout


def test_every_command_has_a_case():
    from llmplan.cli import COMMANDS

    covered = {args[0] for args in CASES.values()}
    assert set(COMMANDS) <= covered, f"add a default table to CASES for: {sorted(set(COMMANDS) - covered)}"


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_pinned(case, width, monkeypatch):
    text = table(CASES[case], width, monkeypatch)
    text = text.replace(str(DATA) + os.sep, "")
    path = PINNED / f"{case}@{width}.txt"
    if os.environ.get("LLMPLAN_UPDATE_TABLES"):
        PINNED.mkdir(exist_ok=True)
        path.write_text(text)
    if not path.is_file():
        pytest.fail(f"no pinned table {path.name}: write it with LLMPLAN_UPDATE_TABLES=1 and read it")
    assert text == path.read_text(), f"{case} at {width} columns differs from {path.name}:\n{text}"
    widest = max(len(line.rstrip()) for line in text.splitlines())
    assert widest <= width, f"{case}: a line of {widest} characters in a {width}-column terminal"


def _body(text: str) -> list[list[str]]:
    """The cells of each data line: lines below the rule (or, for a vertical list, every line of
    the list), split where 2 or more spaces separate columns."""
    lines = text.splitlines()
    rule = next((i for i, line in enumerate(lines) if line.strip().startswith("───")), None)
    start = rule + 1 if rule is not None else 2
    body = []
    for line in lines[start:]:
        if not line.strip():
            break
        body.append(re.split(r"\s{2,}", line.strip()))
    return body


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("case", sorted(set(CASES) - NOT_TWINS))
def test_cells_are_the_humanised_machine_values(case, width, monkeypatch):
    text = table(CASES[case], width, monkeypatch)
    rows = json.loads(run_cli([*CASES[case], "-f", "json"]).stdout)
    keys = list(rows[0])
    humanised = {k: format_column(k, [r.get(k) for r in rows]) for k in keys}
    body = _body(text)
    vertical = text.splitlines()[2].strip() and not any(line.strip().startswith("───") for line in text.splitlines())
    if vertical:  # one row as quantity/value lines: each value is one key's humanised value
        assert len(rows) == 1
        for label, value in body:
            assert any(humanised[k][0] == value.rstrip("*") for k in keys), f"{case}: {label} = {value!r} has no twin"
        return
    assert len(body) == len(rows), f"{case}: {len(body)} table lines for {len(rows)} rows (a cell was wrapped?)"
    columns = len(body[0])
    for cells in body:
        assert len(cells) == columns, f"{case}: {cells} splits differently from the first line"
    for j in range(columns):
        shown = [cells[j].rstrip("*") for cells in body]
        twins = [k for k in keys if humanised[k] == shown]
        assert twins, f"{case}: column {j} {shown} is no key's humanised values"
