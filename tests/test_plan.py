"""Planning questions (llmplan.scaling.optimal) and the `optimal` and `loss` commands."""

from __future__ import annotations

import json
import math

import pytest

from llmplan.errors import InputError
from llmplan.scaling.laws import PF_DAY, load_law
from llmplan.scaling.optimal import log_budgets, loss_row, optimal_rows, params_for_loss, solve, tokens_for_loss
from llmplan.presets import catalog as load_catalog

KEYS = {"law", "flops", "pf_days", "params", "tokens", "tokens_per_param", "loss"}


@pytest.fixture(scope="module")
def chin():
    return load_law("chinchilla", load_catalog())


def rows_of(result):
    assert result.code == 0, result.stderr
    return json.loads(result.stdout)


# ----------------------------------------------------------------- core


def test_log_budgets_ends_and_spacing():
    b = log_budgets(1e21, 1e25, 5)
    assert b[0] == pytest.approx(1e21) and b[-1] == pytest.approx(1e25)
    assert [math.log10(x) for x in b] == pytest.approx([21, 22, 23, 24, 25])


def test_vector_path_equals_scalar_path(chin):
    budgets = log_budgets(1e18, 1e27, 600)  # above VECTOR_MIN: numpy path
    fast = optimal_rows(chin, budgets)
    for i in (0, 123, 599):
        slow = solve(chin, [budgets[i]])[0]
        for key in KEYS - {"law"}:
            assert fast[i][key] == pytest.approx(slow[key], rel=1e-12)


def test_fixed_params_with_budget_spends_it(chin):
    row = solve(chin, [1e23], params=13e9)[0]
    assert row["tokens"] == pytest.approx(1e23 / (6 * 13e9))
    assert 6 * row["params"] * row["tokens"] == pytest.approx(row["flops"])


def test_fixed_params_without_budget_is_on_the_frontier(chin):
    row = solve(chin, [], params=40.36e9)[0]
    # the Gopher-budget optimum is 40.4B (see test_laws); asking for that size returns that budget
    assert row["flops"] == pytest.approx(5.76e23, rel=0.01)
    N, D = chin.optimal(row["flops"])
    assert N == pytest.approx(40.36e9) and D == pytest.approx(row["tokens"])


def test_fixed_tokens_without_budget_is_on_the_frontier(chin):
    row = solve(chin, [], tokens=1.4e12)[0]
    N, D = chin.optimal(row["flops"])
    assert D == pytest.approx(1.4e12) and N == pytest.approx(row["params"])


def test_target_loss_with_fixed_size_or_data(chin):
    row = solve(chin, [], params=7e9, target_loss=2.1)[0]
    assert chin.loss(row["params"], row["tokens"]) == pytest.approx(2.1)
    row = solve(chin, [], tokens=1e12, target_loss=2.0)[0]
    assert chin.loss(row["params"], row["tokens"]) == pytest.approx(2.0)
    with pytest.raises(InputError, match="cannot reach"):
        tokens_for_loss(chin, 1e8, 1.9)  # A/N^alpha alone is above 1.9 - E at 100M
    with pytest.raises(InputError, match="cannot reach"):
        params_for_loss(chin, 1e9, 1.9)


def test_target_loss_is_least_compute(chin):
    # any other split reaching the same loss costs more
    row = solve(chin, [], target_loss=2.0)[0]
    for N in (row["params"] * 0.7, row["params"] * 1.4):
        D = tokens_for_loss(chin, N, 2.0)
        assert 6 * N * D > row["flops"]


def test_over_determined_questions_are_input_errors(chin):
    with pytest.raises(InputError):
        solve(chin, [1e23], params=1e9, tokens=1e10)
    with pytest.raises(InputError):
        solve(chin, [1e23], target_loss=2.0)
    with pytest.raises(InputError):
        solve(chin, [])


def test_loss_row_shares(chin):
    row = loss_row(chin, 70e9, 1.4e12)
    assert row["size_share"] + row["data_share"] == pytest.approx(1.0)
    A, B, alpha, beta = 406.401018, 410.722827, 0.33917084, 0.2849083
    size, data = A / 70e9**alpha, B / 1.4e12**beta
    assert row["size_share"] == pytest.approx(size / (size + data))
    assert row["loss"] == pytest.approx(row["irreducible_loss"] + row["reducible_loss"])


# ----------------------------------------------------------------- `optimal`


def test_optimal_default_law_and_keys(cli):
    rows = rows_of(cli(["optimal", "--budget", "3000pfd", "-f", "json"]))
    assert len(rows) == 1
    row = rows[0]
    assert KEYS <= set(row)
    # The default is Epoch's refit (Besiroglu et al. 2024), not Hoffmann's Approach 3 outlier.
    assert row["law"] == "epoch-2024"
    assert row["pf_days"] == pytest.approx(3000)
    assert row["flops"] == pytest.approx(3000 * PF_DAY)
    assert 6 * row["params"] * row["tokens"] == pytest.approx(row["flops"])


def test_optimal_table_title_names_law_and_budget(cli):
    result = cli(["optimal", "--budget", "3000pfd", "--law", "chinchilla", "-f", "table"])
    assert result.code == 0
    first = result.stdout.splitlines()[0]
    assert "chinchilla" in first and "3,000 PF-days" in first and "2.59e23" in first
    # Humanised: Hoffmann Eq. 4 with the unrounded constants (scaling-laws.md §3.1) at 3000 PF-days.
    from llmplan.scaling.laws import chinchilla_optimal
    from llmplan.units import format_count

    N, D = chinchilla_optimal(3000 * 8.64e19, 406.401018, 410.722827, 0.33917084, 0.2849083)
    assert format_count(N) in result.stdout and format_count(D) in result.stdout


def test_optimal_all_laws_side_by_side(cli):
    rows = rows_of(cli(["optimal", "--budget", "5.76e23", "--law", "all", "-f", "json"]))
    laws = [r["law"] for r in rows]
    for name in ("chinchilla", "chinchilla-rounded", "epoch-2024", "chinchilla-approach1", "chinchilla-approach2", "kaplan-2020", "tokens-per-param", "deepseek-2024", "llama-3"):
        assert name in laws
    by = {r["law"]: r for r in rows}
    assert by["chinchilla-approach1"]["loss"] is None
    assert by["chinchilla"]["loss"] is not None
    assert by["kaplan-2020"]["params_convention"] == "non-embedding"


def test_optimal_stdin_and_ranges(cli):
    rows = rows_of(cli(["optimal", "--budget", "-", "-f", "json"], stdin="1e21\n# comment\n3000pfd\n\n1e25\n"))
    assert [r["flops"] for r in rows] == pytest.approx([1e21, 3000 * PF_DAY, 1e25])
    rows = rows_of(cli(["optimal", "--budget", "1e21:1e25:5", "--budget", "1e26", "-f", "json"]))
    assert [r["flops"] for r in rows] == pytest.approx([1e21, 1e22, 1e23, 1e24, 1e25, 1e26])


def test_optimal_ratio(cli):
    rows = rows_of(cli(["optimal", "--ratio", "25", "--budget", "1e24", "-f", "json"]))
    assert rows[0]["law"] == "tokens-per-param"
    assert rows[0]["tokens_per_param"] == pytest.approx(25)


def test_optimal_params_only(cli):
    rows = rows_of(cli(["optimal", "--params", "7B", "-f", "json"]))
    assert rows[0]["params"] == 7e9 and rows[0]["flops"] == pytest.approx(6 * 7e9 * rows[0]["tokens"])


def test_optimal_target_loss(cli):
    rows = rows_of(cli(["optimal", "--target-loss", "2.0", "-f", "json"]))
    assert rows[0]["loss"] == pytest.approx(2.0)


def test_optimal_user_law_file(cli, tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('[mine]\nname = "mine"\nsource = "test"\nform = "chinchilla"\nE = 1.5\nA = 400\nB = 400\nalpha = 0.3\nbeta = 0.3\nruns = 12\n')
    rows = rows_of(cli(["optimal", "--budget", "1e22", "--law", str(path), "-f", "json"]))
    # equal constants and exponents: N_opt = D_opt = sqrt(C/6)
    assert rows[0]["law"] == "mine"
    assert rows[0]["params"] == pytest.approx(math.sqrt(1e22 / 6))
    assert rows[0]["tokens"] == pytest.approx(math.sqrt(1e22 / 6))


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--target-loss", "1.6", "--law", "chinchilla"], "irreducible loss E = 1.69337"),
        (["--target-loss", "1.69337368", "--law", "chinchilla"], "at or below"),
        (["--target-loss", "1.8"], "irreducible loss E = 1.8172 of law 'epoch-2024'"),
        (["--budget", "1e24", "--law", "chinchila"], "did you mean chinchilla"),
        (["--budget", "1e24", "--law", "chinchilla", "--ratio", "25"], "--ratio applies"),
        (["--budget", "3000pdf"], "did you mean 3000pfd"),
        (["--budget", "1e21:1e25"], "START:STOP:N"),
        (["--budget", "1e21:1e25:x"], "whole number"),
        (["--budget", "1e24", "--law", "llama-3", "--target-loss", "2"], None),
        (["--target-loss", "2", "--law", "llama-3"], "predicts no loss"),
        ([], "give a budget"),
        (["--budget", "1e24", "--law", "/nonexistent/law.toml"], "does not exist"),
    ],
)
def test_optimal_bad_input_exit_2(cli, args, fragment):
    result = cli(["optimal", *args])
    assert result.code == 2, result
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    if fragment:
        assert fragment in result.stderr


# ----------------------------------------------------------------- `loss`


def test_loss_command(cli):
    rows = rows_of(cli(["loss", "--params", "70B", "--tokens", "1.4T", "--law", "chinchilla", "-f", "json"]))
    row = rows[0]
    assert row["loss"] == pytest.approx(1.69337368 + 406.401018 / 70e9**0.33917084 + 410.722827 / 1.4e12**0.2849083)
    assert row["size_share"] + row["data_share"] == pytest.approx(1)


def test_loss_many_from_stdin_and_all_laws(cli):
    rows = rows_of(cli(["loss", "--params", "-", "--law", "all", "-f", "json"], stdin="70B 1.4T\n280B,300B\n"))
    # every law that predicts loss, the data-constrained one included (issue 15)
    assert {r["law"] for r in rows} == {"chinchilla", "chinchilla-rounded", "epoch-2024", "kaplan-2020", "muennighoff-2023"}
    assert len(rows) == 10


@pytest.mark.parametrize(
    "args, stdin, fragment",
    [
        (["--params", "7B", "--tokens", "1T", "--law", "llama-3"], None, "predicts no loss"),
        (["--params", "7B"], None, "--tokens"),
        (["--params", "-"], "70B\n", "PARAMS TOKENS"),
        (["--params", "7Q", "--tokens", "1T"], None, "not a parameter count"),
    ],
)
def test_loss_bad_input(cli, args, stdin, fragment):
    result = cli(["loss", *args], stdin=stdin)
    assert result.code == 2 and result.stdout == ""
    assert fragment in result.stderr


def test_cli_import_stays_light():
    import subprocess
    import sys

    code = "import llmplan.cli.optimal, llmplan.cli.loss, llmplan.cli.compute, llmplan.cli.compare, llmplan.scaling.laws, llmplan.scaling.optimal, llmplan.systems.budget, sys; print(any(m in sys.modules for m in ('numpy', 'scipy')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


def test_user_presets_folder_adds_laws_and_validates_them(cli, tmp_path):
    (tmp_path / "laws.toml").write_text('[half]\nname = "D = 10 N"\nsource = "test"\nform = "tokens-per-param"\nratio = 10\n')
    rows = rows_of(cli(["optimal", "--budget", "6e20", "--law", "half", "--presets", str(tmp_path), "-f", "json"]))
    assert rows[0]["tokens_per_param"] == pytest.approx(10)
    assert rows[0]["params"] == pytest.approx(math.sqrt(6e20 / 60))
    other = tmp_path / "other"  # a new folder: catalogs are cached per folder within a process
    other.mkdir()
    (other / "laws.toml").write_text('[broken]\nname = "x"\nsource = "test"\nform = "power"\nn_coef = 0.1\nn_exp = 1.5\n')
    result = cli(["optimal", "--budget", "6e20", "--presets", str(other)])
    assert result.code == 2
    assert "laws.toml" in result.stderr and "[broken]" in result.stderr and "n_exp" in result.stderr
