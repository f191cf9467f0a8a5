"""`llmplan compare`: famous models against the compute-optimal frontier."""

from __future__ import annotations

import json
import math

import pytest

from llmplan.laws import load_law
from llmplan.plan import compare_row, verdict
from llmplan.presets import catalog as load_catalog

KEYS = {
    "id", "name", "params", "tokens", "tokens_per_param", "flops", "pf_days", "optimal_params",
    "optimal_tokens", "tokens_ratio", "verdict", "tokens_20x", "loss", "optimal_loss",
}
COURSE_MODELS = ["chinchilla-70b", "llama-65b", "gpt-3-175b", "opt-175b", "bloom-176b"]


def rows_of(result):
    assert result.code == 0, result.stderr
    return json.loads(result.stdout)


def test_default_set_has_the_course_models(cli):
    rows = rows_of(cli(["compare", "-f", "json"]))
    ids = [r["id"] for r in rows]
    for name in COURSE_MODELS:
        assert name in ids
    for row in rows:
        assert KEYS <= set(row)
        assert row["params"] and row["tokens"]


def test_twenty_x_figures_match_the_course_table(cli):
    # Course notes table (models.md "Course table check", 20·N column): Chinchilla 1.40T, LLaMA-65B
    # 1.30T (65.2B), GPT-3 3.49T-3.5T, OPT 3.5T, BLOOM 3.52T. Printed to 3 figures: 1% tolerance.
    rows = {r["id"]: r for r in rows_of(cli(["compare", "--models", ",".join(COURSE_MODELS), "-f", "json"]))}
    expected = {"chinchilla-70b": 1.40e12, "llama-65b": 1.30e12, "gpt-3-175b": 3.5e12, "opt-175b": 3.5e12, "bloom-176b": 3.52e12}
    for name, tokens in expected.items():
        assert rows[name]["tokens_20x"] == pytest.approx(tokens, rel=0.01)


def test_rows_are_consistent(cli):
    for row in rows_of(cli(["compare", "-f", "json"])):
        assert row["flops"] == pytest.approx(6 * row["params"] * row["tokens"])
        assert 6 * row["optimal_params"] * row["optimal_tokens"] == pytest.approx(row["flops"])
        assert row["tokens_ratio"] == pytest.approx(row["tokens"] / row["optimal_tokens"])
        assert row["optimal_loss"] <= row["loss"] + 1e-12  # the optimum is never worse at equal compute


def test_verdicts_under_the_20x_rule(cli):
    # Under D = 20N at the same compute, D_opt = sqrt(20 C / 6) so tokens_ratio = sqrt((D/N) / 20).
    rows = {r["id"]: r for r in rows_of(cli(["compare", "--law", "tokens-per-param", "--models", "gpt-3-175b,chinchilla-70b,llama-7b", "-f", "json"]))}
    gpt3 = rows["gpt-3-175b"]
    # N is the exact count of GPT-3's shape (Brown Table 2.1: 174,604,259,328), the headline kept beside it.
    assert gpt3["params"] == 174_604_259_328 and gpt3["nominal_params"] == 175e9
    assert gpt3["tokens_ratio"] == pytest.approx(math.sqrt((300e9 / 174_604_259_328) / 20))
    assert gpt3["verdict"] == f"under-trained {1 / gpt3['tokens_ratio']:.1f}x" == "under-trained 3.4x"
    assert rows["chinchilla-70b"]["verdict"] == "near optimal"
    assert rows["chinchilla-70b"]["tokens_ratio"] == pytest.approx(1.0)
    assert rows["gpt-3-175b"]["loss"] is None and rows["gpt-3-175b"]["optimal_loss"] is None


def test_verdict_words():
    assert verdict(1 / 11.7) == "under-trained 11.7x"
    assert verdict(7.5) == "over-trained 7.5x"
    assert verdict(1.0) == verdict(0.6) == verdict(1.9) == "near optimal"


def test_chinchilla_is_near_optimal_and_gpt3_under_trained_under_default_law():
    law = load_law("chinchilla", load_catalog())
    assert compare_row(law, "c", "Chinchilla", 70e9, 1.4e12)["verdict"] == "near optimal"
    assert compare_row(law, "g", "GPT-3", 175e9, 300e9)["verdict"].startswith("under-trained")


def test_table(cli):
    result = cli(["compare", "--models", ",".join(COURSE_MODELS), "-f", "table"])
    assert result.code == 0
    lines = result.stdout.splitlines()
    assert "chinchilla" in lines[0]
    # 20·N with the exact count 174.6B (the headline 175B gave 3.50T)
    assert any("gpt-3-175b" in line and "under-trained" in line and "3.49T" in line for line in lines)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--models", "gpt-4"], "unknown model"),
        (["--models", "mistral-7b"], "no training tokens"),
        (["--law", "all"], "one law"),
        (["--models", ","], "at least one"),
    ],
)
def test_compare_bad_input(cli, args, fragment):
    result = cli(["compare", *args])
    assert result.code == 2 and result.stdout == ""
    assert fragment in result.stderr
