"""Numerical edge cases: extreme budgets and sizes, degenerate exponents, and honest extrapolation.

Budgets from 1e15 to 1e30 FLOPs and models from 1M to 10T parameters must give finite numbers or
a one-line error (exit 2), never NaN, infinity or a traceback; where a law is used outside the
range it was fitted on, the output says so (a warning on stderr, `extrapolated` in every row).
"""

import json
import math

import pytest

LAWS = ["chinchilla", "chinchilla-rounded", "epoch-2024", "chinchilla-approach1", "chinchilla-approach2", "kaplan-2020", "tokens-per-param", "deepseek-2024", "llama-3"]


def _finite_rows(text):
    rows = json.loads(text)
    for row in rows:
        for key, value in row.items():
            if isinstance(value, float):
                assert math.isfinite(value), (key, row)
    return rows


@pytest.mark.parametrize("law", LAWS)
def test_budgets_from_1e15_to_1e30_stay_finite(cli, law):
    result = cli(["optimal", "--budget", "1e15:1e30:16", "--law", law, "-f", "json"])
    assert result.code == 0, result.stderr
    rows = _finite_rows(result.stdout)
    assert len(rows) == 16
    for row in rows:
        assert row["params"] > 0 and row["tokens"] > 0
        assert 6 * row["params"] * row["tokens"] == pytest.approx(row["flops"], rel=1e-9)


@pytest.mark.parametrize("size", ["1M", "1B", "10T"])
@pytest.mark.parametrize("law", ["chinchilla", "epoch-2024", "kaplan-2020"])
def test_models_from_1M_to_10T_parameters(cli, law, size):
    for args in (["optimal", "--params", size], ["loss", "--params", size, "--tokens", "1T"]):
        result = cli([*args, "--law", law, "-f", "json"])
        assert result.code == 0, result.stderr
        _finite_rows(result.stdout)


def _law_file(tmp_path, alpha, beta):
    path = tmp_path / "law.toml"
    path.write_text(f'[edge]\nname = "edge"\nform = "chinchilla"\nE = 1.7\nA = 400.0\nB = 400.0\nalpha = {alpha!r}\nbeta = {beta!r}\nsource = "test"\n')
    return str(path)


@pytest.mark.parametrize("alpha, beta", [(0.3, 0.3), (0.3, 0.3000001), (1e-3, 0.3), (0.3, 1e-3), (1e-3, 1e-3)])
def test_exponents_near_each_other_and_near_zero(cli, tmp_path, alpha, beta):
    # With exponents near 0 the optimum runs off to astronomically large N or D: either a finite
    # answer or a clear exit 2, never NaN or a traceback.
    result = cli(["optimal", "--budget", "1e15", "--budget", "1e24", "--budget", "1e30", "--law", _law_file(tmp_path, alpha, beta), "-f", "json"])
    assert result.code in (0, 2), result.stderr
    assert "Traceback" not in result.stderr
    if min(alpha, beta) > 0.1:  # ordinary exponents, even nearly equal, must give an answer
        assert result.code == 0, result.stderr
    if result.code == 0:
        _finite_rows(result.stdout)
    else:
        assert result.stdout == "" and result.stderr.count("\n") == 1


def test_equal_exponents_split_compute_evenly(cli, tmp_path):
    # alpha = beta and A = B: G = 1, a = b = 1/2, so N_opt = D_opt = sqrt(C/6) (Hoffmann Eq. 4).
    result = cli(["optimal", "--budget", "6e20", "--law", _law_file(tmp_path, 0.3, 0.3), "-f", "json"])
    (row,) = json.loads(result.stdout)
    assert row["params"] == pytest.approx(1e10, rel=1e-12) and row["tokens"] == pytest.approx(1e10, rel=1e-12)


def test_extrapolation_is_flagged_and_warned(cli):
    # Hoffmann et al. fitted on 70M-16B parameters and 5B-500B tokens (§3).
    inside = cli(["loss", "--params", "1B", "--tokens", "20B", "--law", "chinchilla", "-f", "json"])
    assert json.loads(inside.stdout)[0]["extrapolated"] is False and "warning" not in inside.stderr
    outside = cli(["loss", "--params", "70B", "--tokens", "1.4T", "--law", "chinchilla", "-f", "json"])
    assert json.loads(outside.stdout)[0]["extrapolated"] is True
    assert "warning: law chinchilla was fitted on 70.0M-16.0B params, 5.0B-500B tokens" in outside.stderr
    # A law without a recorded range says null, not false.
    unknown = cli(["optimal", "--budget", "1e22", "--law", "llama-3", "-f", "json"])
    assert json.loads(unknown.stdout)[0]["extrapolated"] is None


def test_compare_flags_models_beyond_the_fit(cli):
    result = cli(["compare", "--models", "gpt-3-175b,pythia-12b", "-f", "json"])
    rows = {r["id"]: r for r in json.loads(result.stdout)}
    assert rows["gpt-3-175b"]["extrapolated"] is True  # 175B parameters > 16B
    assert rows["pythia-12b"]["extrapolated"] is False  # 11.8B parameters, 300B tokens
