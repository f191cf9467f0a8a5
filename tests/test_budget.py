"""Budgets from hardware time (llmplan.systems.budget, --gpu/--gpus/--days/--hours/--gpu-hours) in optimal and compute."""

from __future__ import annotations

import json

import pytest

from llmplan.systems.budget import budget_flops, implied_mfu

H100_BF16 = 989.4e12  # NVIDIA H100 SXM5 datasheet, dense BF16 (half the 1,979 'with sparsity')
MONTH = 30 * 86400.0


def rows_of(result):
    assert result.code == 0, result.stderr
    return json.loads(result.stdout)


def test_budget_is_gpus_times_peak_times_mfu_times_time_times_goodput():
    # 256 H100s for 30 days at 40% MFU with 90% of the time spent training, by hand:
    # 256 x 989.4e12 x 0.4 x 2,592,000 s x 0.9 = 2.3635e23 FLOPs (2,735 PF-days).
    assert budget_flops(256, H100_BF16, 0.4, MONTH, 0.9) == pytest.approx(2.36346605568e23, rel=1e-12)
    # And back: the MFU those GPU-hours imply for that many FLOPs, if no time had been lost.
    assert implied_mfu(2.36346605568e23, 256 * 720, H100_BF16) == pytest.approx(0.4 * 0.9, rel=1e-12)


def test_optimal_and_compute_agree_on_the_budget_of_the_same_hardware(cli):
    hardware = ["--gpu", "h100", "--gpus", "256", "--days", "30", "--mfu", "0.35", "--goodput", "0.95"]
    (opt,) = rows_of(cli(["optimal", *hardware, "-f", "json"]))
    (comp,) = rows_of(cli(["compute", *hardware, "-f", "json"]))
    assert opt["flops"] == comp["flops"] == pytest.approx(256 * H100_BF16 * 0.35 * MONTH * 0.95, rel=1e-12)
    # params and tokens are whole numbers (rounded; docs/schema.md): 6ND is C within 1/N + 1/D
    assert 6 * opt["params"] * opt["tokens"] == pytest.approx(opt["flops"], rel=1e-12 + 1 / opt["params"] + 1 / opt["tokens"])
    # The days are calendar time: the wall time is the time given.
    assert opt["wall_seconds"] == comp["wall_seconds"] == MONTH
    assert opt["gpu_hours"] == comp["gpu_hours"] == 256 * 720
    assert (opt["gpu"], opt["gpus"], opt["mfu"], opt["goodput"]) == ("h100-sxm", 256, 0.35, 0.95)


def test_hours_and_gpu_hours_are_the_same_budget_as_days(cli):
    days = rows_of(cli(["compute", "--gpu", "a100", "--gpus", "64", "--days", "2", "-f", "json"]))[0]
    hours = rows_of(cli(["compute", "--gpu", "a100", "--gpus", "64", "--hours", "48", "-f", "json"]))[0]
    gpu_hours = rows_of(cli(["compute", "--gpu", "a100", "--gpus", "64", "--gpu-hours", "3072", "-f", "json"]))[0]
    assert days["flops"] == pytest.approx(hours["flops"], rel=1e-12) and days["flops"] == pytest.approx(gpu_hours["flops"], rel=1e-12)
    assert gpu_hours["wall_seconds"] == pytest.approx(48 * 3600)
    # Default MFU 0.4 and goodput 0.9; A100 dense bf16 312 TFLOP/s.
    assert days["flops"] == pytest.approx(64 * 312e12 * 0.4 * 2 * 86400 * 0.9, rel=1e-12)
    # --gpu-hours alone: 184k GPU-hours, on one GPU if --gpus is not given.
    (alone,) = rows_of(cli(["optimal", "--gpu", "h100", "--gpu-hours", "184k", "-f", "json"]))
    assert alone["gpu_hours"] == 184_000 and alone["gpus"] == 1
    assert alone["flops"] == pytest.approx(184_000 * 3600 * H100_BF16 * 0.4 * 0.9, rel=1e-12)


def test_compute_prices_the_gpu_hours_of_a_hardware_budget(cli):
    (row,) = rows_of(cli(["compute", "--gpu", "h100", "--gpus", "8", "--days", "1", "--price", "2.5", "-f", "json"]))
    assert row["cost_usd"] == pytest.approx(8 * 24 * 2.5)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["optimal", "--gpu", "h100", "--days", "30"], "need --gpus"),
        (["optimal", "--gpus", "256", "--days", "30"], "needs --gpu"),
        (["optimal", "--gpu", "h100", "--gpus", "8", "--days", "1", "--hours", "2"], "not both"),
        (["optimal", "--gpu", "h100", "--gpus", "8", "--days", "1", "--budget", "1e23"], "not both"),
        (["optimal", "--gpu", "h100", "--gpus", "8", "--days", "1", "--mfu", "1.5"], "--mfu 1.5"),
        (["optimal", "--gpu", "h100", "--gpus", "8", "--days", "1", "--goodput", "0"], "positive"),
        (["optimal", "--gpu", "h100", "--gpus", "8", "--days", "-3"], "days"),
        (["optimal", "--gpu", "h100x", "--gpus", "8", "--days", "3"], "unknown GPU"),
        (["optimal", "--budget", "1e23", "--mfu", "0.3"], "hardware time"),
        (["compute", "--gpu", "h100", "--gpus", "8", "--days", "1", "--params", "7B"], "drop --budget"),
        (["compute", "--params", "7B", "--tokens", "1T", "--goodput", "0.9"], "--goodput applies"),
        (["compute", "--gpu", "h100", "--gpus", "0", "--days", "1"], "at least 1"),
    ],
)
def test_bad_hardware_budgets_exit_2_with_one_line(cli, args, fragment):
    result = cli(args)
    assert result.code == 2, result
    assert result.stderr.count("\n") == 1 and fragment in result.stderr, result.stderr
