"""`llmplan plan` and llmplan.run_plan: the parts of a plan agree with the commands that own them."""

from __future__ import annotations

import json

import pytest

from llmplan.errors import WorkError
from llmplan.run_plan import energy_joules, solve_mfu, whole_sequence_batch

HARDWARE = ["--gpu", "h100", "--gpus", "256", "--days", "30"]


def one(result):
    assert result.code == 0, result.stderr
    (row,) = json.loads(result.stdout)
    return row


@pytest.fixture(scope="module")
def plan_row():
    from tests.conftest import run_cli

    return one(run_cli(["plan", *HARDWARE, "--price", "2", "-f", "json"]))


def test_budget_equals_computes_for_the_same_hardware_and_mfu(cli, plan_row):
    comp = one(cli(["compute", *HARDWARE, "-f", "json"]))
    assert plan_row["flops"] == comp["flops"]
    # The days are calendar time: the plan takes exactly 30 days on 256 GPUs.
    assert plan_row["wall_seconds"] == pytest.approx(30 * 86400, rel=1e-12)
    assert plan_row["gpu_hours"] == pytest.approx(256 * 720, rel=1e-12)
    assert plan_row["training_seconds"] == pytest.approx(0.9 * 30 * 86400, rel=1e-12)
    assert plan_row["cost_usd"] == pytest.approx(256 * 720 * 2.0, rel=1e-12)


def test_allocation_equals_optimals_and_D_is_C_over_6N(cli, plan_row):
    opt = one(cli(["optimal", *HARDWARE, "-f", "json"]))
    assert plan_row["law"] == "epoch-2024"  # the default law
    # The plan's counts are whole numbers: equal to optimal's within half a parameter / token.
    assert plan_row["params"] == pytest.approx(opt["params"], abs=0.5) and plan_row["tokens"] == pytest.approx(opt["tokens"], abs=0.5)
    assert plan_row["loss"] == opt["loss"]
    assert isinstance(plan_row["params"], int) and isinstance(plan_row["tokens"], int)
    # D = C / (6N) within that rounding (relative 1e-9 is ~1,000x the rounding of a 46B count).
    assert plan_row["tokens"] == pytest.approx(plan_row["flops"] / (6 * plan_row["params"]), rel=1e-9)


def test_shape_equals_arch_target_for_that_model(cli, plan_row):
    result = cli(["arch", "--target", repr(plan_row["params"]), "--proposals", "1", "-f", "json"])
    assert result.code == 0, result.stderr
    (shape,) = json.loads(result.stdout)
    assert shape["params"] == plan_row["shape_params"]
    assert (shape["layers"], shape["d_model"]) == (plan_row["shape_layers"], plan_row["shape_d_model"])
    # The proposed shape's exact count is within 2% of the law's N (shapes come in whole layers and 128s).
    assert plan_row["shape_params"] == pytest.approx(plan_row["params"], rel=0.02)


def test_hyperparameters_are_the_laws_own_values_beside_the_batch_run(plan_row):
    C = plan_row["flops"]
    # DeepSeek LLM 2024 §3.1 at the plan's budget.
    assert plan_row["batch_tokens"] == pytest.approx(0.2920 * C**0.3271, rel=1e-12)
    assert plan_row["learning_rate"] == pytest.approx(0.3118 * C**-0.1250, rel=1e-12)
    assert plan_row["hparams"] == "deepseek-2024" and plan_row["hparams_extrapolated"] is True  # fitted 1e17-2e19
    # The batch run is whole sequences, a multiple of the 256 data-parallel GPUs, within half a step of the law.
    assert plan_row["global_batch"] % 256 == 0
    assert plan_row["global_batch_tokens"] == plan_row["global_batch"] * plan_row["seq"]
    assert abs(plan_row["global_batch_tokens"] - plan_row["batch_tokens"]) <= 256 * 4096 / 2
    assert plan_row["steps"] * plan_row["global_batch_tokens"] >= plan_row["tokens"] > (plan_row["steps"] - 1) * plan_row["global_batch_tokens"]


def test_energy_is_board_power_times_gpus_times_time_times_pue(plan_row):
    # H100 SXM5: 700 W (datasheet), 256 GPUs, 30 days, PUE 1.1: 700 x 256 x 2,592,000 x 1.1 J = 141,926 kWh.
    assert plan_row["tdp_watts"] == 700 and plan_row["pue"] == 1.1
    assert plan_row["energy_kwh"] == pytest.approx(700 * 256 * 30 * 24 * 1.1 / 1000, rel=1e-12)
    assert energy_joules(700, 256, 2_592_000, 1.1) == pytest.approx(plan_row["energy_joules"], rel=1e-12)


def test_target_loss_fixes_the_compute_and_the_wall_time_follows(cli):
    row = one(cli(["plan", "--gpu", "h100", "--gpus", "512", "--target-loss", "2.0", "-f", "json"]))
    opt = one(cli(["optimal", "--target-loss", "2.0", "-f", "json"]))
    assert row["flops"] == pytest.approx(opt["flops"], rel=1e-12)
    assert row["wall_seconds"] == pytest.approx(row["flops"] / (512 * 989.4e12 * 0.4 * 0.9), rel=1e-12)


def test_the_table_is_a_vertical_summary_that_fits_80_columns(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    result = cli(["plan", *HARDWARE, "--price", "2", "-f", "table"])
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    text = result.stdout
    for group in ("model", "data", "optimisation", "hardware", "time and money"):
        assert f" {group} " in text
    assert "30.0 days" in text and "368,640" in text


def test_whole_sequence_batch_rounds_to_the_data_parallel_multiple():
    assert whole_sequence_batch(12.9e6, 4096, 256) == 3072  # 3,149 sequences -> 12 x 256
    assert whole_sequence_batch(1e3, 4096, 8) == 8  # at least one sequence per replica


def test_fixed_point_converges_and_reports_its_iterations():
    # A contraction m -> 0.3 + 0.25 (m - 0.3): converges to 0.3 from 0.4.
    mfu, history = solve_mfu(lambda m: 0.3 + 0.25 * (m - 0.3), 0.4)
    assert mfu == pytest.approx(0.3, abs=1e-3) and history[0] == 0.4 and len(history) <= 8


def test_fixed_point_fails_clearly_when_it_cannot_converge():
    # A layout that flips between two MFUs as the model changes size never settles.
    with pytest.raises(WorkError, match="did not converge in 20 iterations"):
        solve_mfu(lambda m: 0.45 if m < 0.4 else 0.35, 0.4)
    with pytest.raises(WorkError, match="MFU of"):
        solve_mfu(lambda m: 1.7, 0.4)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--gpus", "256", "--days", "30"], "needs the hardware"),
        (["--gpu", "h100", "--gpus", "256"], "give the hardware time"),
        (["--gpu", "h100", "--target-loss", "2.0"], "--gpus is needed"),
        (["--gpu", "h100", "--gpus", "8", "--days", "3", "--target-loss", "2.0"], "fixes the budget"),
        (["--gpu", "h100", "--gpus", "8", "--days", "3", "--pue", "0.9"], "below 1"),
        (["--gpu", "h100", "--gpus", "8", "--days", "3", "--hparams", "nope"], "unknown hyperparameter law"),
        (["--gpu", "h100", "--gpus", "8", "--days", "3", "--law", "all"], "one law"),
        (["--gpu", "h100", "--gpus", "1", "--hours", "1e-9"], "outside the 1M-10T range"),
    ],
)
def test_bad_plans_exit_2_with_one_line(cli, args, fragment):
    result = cli(["plan", *args])
    assert result.code == 2, result
    assert result.stderr.count("\n") == 1 and fragment in result.stderr, result.stderr
