"""`llmplan compare`: famous models against the compute-optimal frontier."""

from __future__ import annotations

import json
import math

import pytest

from llmplan.scaling.laws import load_law
from llmplan.scaling.optimal import compare_row, verdict
from llmplan.presets import catalog as load_catalog

KEYS = {
    "model", "name", "params", "tokens", "tokens_per_param", "flops", "pf_days", "optimal_params",
    "optimal_tokens", "tokens_ratio", "verdict", "tokens_20x", "loss", "optimal_loss",
}
COURSE_MODELS = ["chinchilla-70b", "llama-65b", "gpt-3-175b", "opt-175b", "bloom-176b"]


def rows_of(result):
    assert result.code == 0, result.stderr
    return json.loads(result.stdout)


def test_default_set_has_the_course_models(cli):
    rows = rows_of(cli(["compare", "-f", "json"]))
    ids = [r["model"] for r in rows]
    for name in COURSE_MODELS:
        assert name in ids
    for row in rows:
        assert KEYS <= set(row)
        assert row["params"] and row["tokens"]


def test_twenty_x_figures_match_the_course_table(cli):
    # Course notes table (models.md "Course table check", 20·N column): Chinchilla 1.40T, LLaMA-65B
    # 1.30T (65.2B), GPT-3 3.49T-3.5T, OPT 3.5T, BLOOM 3.52T. Printed to 3 figures: 1% tolerance.
    rows = {r["model"]: r for r in rows_of(cli(["compare", "--models", ",".join(COURSE_MODELS), "-f", "json"]))}
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
    rows = {r["model"]: r for r in rows_of(cli(["compare", "--law", "tokens-per-param", "--models", "gpt-3-175b,chinchilla-70b,llama-7b", "-f", "json"]))}
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
    assert "(epoch-2024)" in lines[0]  # the default law
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


def test_implied_mfu_by_hand(cli):
    # implied MFU = 6ND / (GPU-hours x 3600 x dense peak), A100 bf16 dense peak 312 TFLOP/s (datasheet).
    rows = {r["model"]: r for r in rows_of(cli(["compare", "--models", "llama-65b,bloom-176b,gpt-3-175b", "-f", "json"]))}
    # LLaMA-65B: 65,285,660,672 params (the exact count of its shape; headline 65.2B), 1.4T tokens,
    # 1,022,362 A100-80GB hours (Touvron et al. 2023, Table 15).
    assert rows["llama-65b"]["implied_mfu"] == pytest.approx(6 * 65_285_660_672 * 1.4e12 / (1_022_362 * 3600 * 312e12), rel=1e-12)
    assert round(rows["llama-65b"]["implied_mfu"], 3) == 0.478
    # BLOOM-176B: 176,247,271,424 params, 366B tokens, 1,082,990 A100-80GB hours (Le Scao et al. 2022).
    assert round(rows["bloom-176b"]["implied_mfu"], 3) == 0.318
    assert rows["bloom-176b"]["gpu"] == "a100-80gb" and rows["bloom-176b"]["gpu_hours"] == 1_082_990
    # No published GPU-hours: null, not zero.
    assert rows["gpt-3-175b"]["implied_mfu"] is None


def test_implied_mfu_for_at_least_six_presets_and_the_downtime_reminder(cli):
    result = cli(["compare", "-f", "json"])
    rows = rows_of(result)
    with_mfu = [r for r in rows if r["implied_mfu"] is not None]
    assert len(with_mfu) >= 6
    # Published hours include downtime: every implied MFU is below the best measured (~0.55, memory-and-compute notes).
    assert all(0.05 < r["implied_mfu"] < 0.6 for r in with_mfu)
    assert "include downtime" in result.stderr


def test_predicted_mfu_beside_the_implied_one(cli):
    # The throughput model's fastest layout for LLaMA-65B on its published 2,048 A100s at its 4M-token
    # batch (Touvron et al. 2023), counted as 6ND like implied_mfu, so the two compare like with like.
    from llmplan.model import arch
    from llmplan.systems.layout_search import search
    from llmplan.systems.gpu import GPU
    from llmplan.systems.layout import Run

    rows = {r["model"]: r for r in rows_of(cli(["compare", "--models", "llama-65b,pythia-12b,gpt-3-175b", "-f", "json"]))}
    cat = load_catalog()
    preset = cat.get("models", "llama-65b")
    best = search(arch.Shape.from_preset(preset), Run(seq=2048, global_batch=2048), GPU.from_preset(cat.get("gpus", "a100-80gb")), 2048, top=1).best[0]
    expected = 6 * 65.2e9 * 2048 * 2048 / (best.step.step_seconds * 2048 * 312e12)
    assert rows["llama-65b"]["predicted_mfu"] == pytest.approx(expected, rel=1e-12)
    # No downtime in the model: it predicts more than the published hours imply.
    for model in ("llama-65b", "pythia-12b"):
        assert rows[model]["predicted_mfu"] > rows[model]["implied_mfu"]
    assert rows["gpt-3-175b"]["predicted_mfu"] is None
