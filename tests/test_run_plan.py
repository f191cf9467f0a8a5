"""`llmplan plan` and llmplan.planning.plan: the parts of a plan agree with the commands that own them."""

from __future__ import annotations

import json

import pytest

from llmplan.errors import WorkError
from llmplan.planning.plan import energy_joules, whole_sequence_batch
from llmplan.systems.mfu import solve_mfu

HARDWARE = ["--gpu", "h100", "--gpus", "256", "--days", "30"]


def one(result):
    assert result.code == 0, result.stderr
    (row,) = json.loads(result.stdout)
    return row


@pytest.fixture(scope="module")
def plan_row():
    """The plan at a given MFU (0.4): its parts compared with the commands that own them."""
    from tests.conftest import run_cli

    return one(run_cli(["plan", *HARDWARE, "--mfu", "0.4", "--price", "2", "-f", "json"]))


@pytest.fixture(scope="module")
def auto_row():
    """The default plan: the MFU of the fastest layout drives the budget."""
    from tests.conftest import run_cli

    result = run_cli(["plan", *HARDWARE, "-f", "json"])
    return one(result) | {"stderr": result.stderr}


def test_one_mfu_drives_the_default_plan(auto_row):
    # Issue 22: the layout's steps x step time / goodput is the wall time given (30 days) within 1%, and
    # the one MFU (6ND counted) is the layout's: 6 N x tokens per step / (step time x GPUs x peak).
    r = auto_row
    assert r["mfu_source"] == "layout" and "layout_mfu" not in r
    assert r["steps"] * r["step_seconds"] / r["goodput"] == pytest.approx(30 * 86400, rel=0.01)
    assert r["wall_seconds"] == pytest.approx(30 * 86400, rel=1e-12)
    achieved = 6 * r["params"] * r["global_batch_tokens"] / (r["step_seconds"] * 256 * 989.4e12)
    assert r["mfu"] == pytest.approx(achieved, rel=0.01)
    # The budget is that MFU's: C = 256 x peak x MFU x 30 days x 0.9, and C = 6ND.
    assert r["flops"] == pytest.approx(256 * 989.4e12 * r["mfu"] * 30 * 86400 * 0.9, rel=1e-9)
    assert r["tokens"] == pytest.approx(r["flops"] / (6 * r["params"]), rel=1e-9)
    # A shape a node can split: heads in multiples of 8, 8 KV heads.
    assert r["shape_heads"] % 8 == 0 and r["shape_kv_heads"] == 8 and r["shape_heads"] % r["tp"] == 0


def test_a_given_mfu_the_layout_misses_is_said_with_the_time_it_takes(cli):
    # --mfu 0.9: no layout reaches it; the note says what the fastest reaches and how long the run then takes.
    result = cli(["plan", *HARDWARE, "--mfu", "0.9", "-f", "json"])
    r = one(result)
    assert r["mfu"] == 0.9 and r["mfu_source"] == "given" and r["wall_seconds"] == pytest.approx(30 * 86400, rel=1e-12)
    reached = 6 * r["params"] * r["global_batch_tokens"] / (r["step_seconds"] * 256 * 989.4e12)
    assert reached < 0.9 and "reaches only MFU" in result.stderr
    assert r["layout_training_seconds"] == pytest.approx(r["steps"] * r["step_seconds"], rel=1e-12)


def test_budget_equals_computes_for_the_same_hardware_and_mfu(cli, plan_row):
    comp = one(cli(["compute", *HARDWARE, "-f", "json"]))
    assert plan_row["flops"] == comp["flops"]
    # The days are calendar time: the plan takes exactly 30 days on 256 GPUs.
    assert plan_row["wall_seconds"] == pytest.approx(30 * 86400, rel=1e-12)
    assert plan_row["gpu_hours"] == pytest.approx(256 * 720, rel=1e-12)
    assert plan_row["training_seconds"] == pytest.approx(0.9 * 30 * 86400, rel=1e-12)
    assert plan_row["cost_usd"] == pytest.approx(256 * 720 * 2.0, rel=1e-12)


def test_allocation_equals_optimals_and_D_is_C_over_6N(cli, plan_row):
    opt = one(cli(["optimal", *HARDWARE, "--mfu", "0.4", "-f", "json"]))
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
    # The proposed shape's exact count is the nearest to the law's N: within 8% (widths step by 1024 and
    # depths by 8, so between 1B and 10T the nearest shape is at most 7.2% off).
    assert plan_row["shape_params"] == pytest.approx(plan_row["params"], rel=0.08)


def test_hyperparameters_are_the_laws_own_values_beside_the_batch_run(plan_row):
    # DeepSeek LLM 2024 §3.1 at the paper's C = M·D, M = non-embedding FLOPs per token with attention (§3.2).
    C = (6 * plan_row["shape_non_embedding_params"] + 12 * plan_row["shape_layers"] * plan_row["shape_d_model"] * plan_row["seq"]) * plan_row["tokens"]
    assert C == pytest.approx(plan_row["flops"], rel=0.1)  # within 10% of 6ND for a 46B model at 4k context
    assert plan_row["batch_tokens"] == pytest.approx(0.2920 * C**0.3271, rel=1e-9, abs=0.5)  # tokens are rounded to whole ones
    assert plan_row["learning_rate"] == pytest.approx(0.3118 * C**-0.1250, rel=1e-9)
    assert plan_row["hparams"] == "deepseek-2024" and plan_row["hparams_extrapolated"] is True  # fitted 1e17-2e19
    # The batch run is whole sequences, a multiple of the 256 data-parallel GPUs, never above the law's,
    # within one such multiple of it.
    assert plan_row["global_batch"] % 256 == 0
    assert plan_row["global_batch_tokens"] == plan_row["global_batch"] * plan_row["seq"]
    assert 0 <= plan_row["batch_tokens"] - plan_row["global_batch_tokens"] < 256 * 4096
    assert plan_row["steps"] * plan_row["global_batch_tokens"] >= plan_row["tokens"] > (plan_row["steps"] - 1) * plan_row["global_batch_tokens"]


def test_energy_is_node_power_per_gpu_times_gpus_times_time_times_pue(cli, plan_row):
    # DGX H100: 10.2 kW rated for 8 GPUs (NVIDIA DGX H100/H200 user guide) = 1,275 W per GPU; 256 GPUs,
    # 30 days, PUE 1.1: 1,275 x 256 x 720 h x 1.1 = 258,509 kWh. The 700 W board power is its own key.
    assert plan_row["tdp_watts"] == 700 and plan_row["node_watts_per_gpu"] == 1275 and plan_row["pue"] == 1.1
    assert plan_row["energy_basis"] == "node"
    assert plan_row["energy_kwh"] == pytest.approx(1275 * 256 * 30 * 24 * 1.1 / 1000, rel=1e-12)
    assert energy_joules(1275, 256, 2_592_000, 1.1) == pytest.approx(plan_row["energy_joules"], rel=1e-12)
    # DGX A100: 6.5 kW for 8 GPUs = 812.5 W per GPU; a GPU without a node in the catalog falls back to its board.
    a100 = one(cli(["plan", "--gpu", "a100", "--gpus", "64", "--days", "10", "--mfu", "0.4", "-f", "json"]))
    assert a100["node_watts_per_gpu"] == 812.5 and a100["energy_kwh"] == pytest.approx(812.5 * 64 * 240 * 1.1 / 1000, rel=1e-12)
    l4 = one(cli(["plan", "--gpu", "l4", "--gpus", "1", "--days", "10", "--mfu", "0.4", "-f", "json"]))
    assert l4["energy_basis"] == "board" and l4["node_watts_per_gpu"] is None
    assert l4["energy_kwh"] == pytest.approx(72 * 240 * 1.1 / 1000, rel=1e-12)


def test_published_runs_of_that_scale_stand_beside_an_extrapolated_batch_law(cli):
    # 16,384 H100s for 54 days: ~4e25 FLOPs, 2,000x beyond DeepSeek's fitted 2e19; the law's batch is ~63M tokens.
    # The nearest published run is Llama 3.1 405B (3.8e25 FLOPs, at most 16M tokens: Llama 3 paper Sec. 3.4.1); a
    # warning names the largest batch of the runs within SCALE_FACTOR of the compute when the plan's run passes it.
    result = cli(["plan", "--gpu", "h100", "--gpus", "16384", "--days", "54", "-f", "json"])
    r = one(result)
    assert r["published_run"] == "llama-3.1-405b" and r["published_batch_tokens"] == 16_777_216 and r["published_learning_rate"] == 8e-5
    assert r["global_batch_tokens"] <= r["batch_tokens"]  # never rounded up past the law
    # the warning names the largest batch of the published runs within SCALE_FACTOR of this compute, when the plan's is larger
    from llmplan.planning.plan import published_settings
    from llmplan.presets import catalog

    nearest, scale = published_settings(catalog().all("runs"), r["flops"])
    largest = max(scale or [nearest], key=lambda run: float(run["max_batch_tokens"]))
    ceiling = float(largest["max_batch_tokens"])
    assert ("larger than the batch of any published run" in result.stderr) == (r["global_batch_tokens"] > ceiling)
    # a batch past it is warned of, naming that run
    from llmplan.planning.plan import batch_warning

    said = batch_warning(4 * ceiling, r["flops"], nearest, scale)
    assert said and "larger than the batch of any published run" in said and largest.name in said
    # tp 8: the shape's 8 KV heads and heads in multiples of 8 let tensor parallelism span the node.
    assert r["tp"] == 8 and r["shape_heads"] % 8 == 0 and r["shape_kv_heads"] == 8
    # A batch within what published runs of its scale used is no warning.
    small = cli(["plan", *HARDWARE, "--mfu", "0.4", "-f", "json"])
    assert one(small)["global_batch_tokens"] <= 18_874_368 and "larger than the batch of any published run" not in small.stderr


def test_target_loss_fixes_the_compute_and_the_wall_time_follows(cli):
    row = one(cli(["plan", "--gpu", "h100", "--gpus", "512", "--target-loss", "2.0", "--mfu", "0.4", "-f", "json"]))
    opt = one(cli(["optimal", "--target-loss", "2.0", "-f", "json"]))
    assert row["flops"] == pytest.approx(opt["flops"], rel=1e-12)
    assert row["wall_seconds"] == pytest.approx(row["flops"] / (512 * 989.4e12 * 0.4 * 0.9), rel=1e-12)
    # By default the wall time is the layout's: steps x step time / goodput, within 1%.
    auto = one(cli(["plan", "--gpu", "h100", "--gpus", "512", "--target-loss", "2.0", "-f", "json"]))
    assert auto["flops"] == row["flops"] and auto["mfu_source"] == "layout"
    assert auto["steps"] * auto["step_seconds"] / 0.9 == pytest.approx(auto["wall_seconds"], rel=0.01)


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


def test_batch_on_many_gpus_stays_near_the_law():
    # 16,384 GPUs for a day: the law asks 16.9M tokens = 4,128 sequences of 4,096; rounding to a multiple of
    # every GPU once ran 16,384 sequences (67M tokens, 4x the law). The largest divisor of the GPU count not
    # above the law's sequences is 4,096: the batch run is within one such multiple of the law's.
    from llmplan.planning.plan import batch_multiple
    from tests.conftest import run_cli

    assert batch_multiple(16_908_505, 4096, 16_384) == 4096
    assert batch_multiple(13.2e6, 4096, 256) == 256
    assert batch_multiple(1e3, 4096, 8) == 1  # less than a sequence: one at a time
    r = run_cli(["plan", "--gpu", "h100", "--gpus", "16384", "--days", "1", "-f", "json"])
    assert r.code == 0, r.stderr
    row = json.loads(r.stdout)[0]
    assert 0 <= row["batch_tokens"] - row["global_batch"] * row["seq"] < 4096 * row["seq"]
    assert row["global_batch"] % (row["dp"] * row["micro_batch"]) == 0


def test_dtype_spellings_without_hardware_time():
    # Without --days the budget was built without the dtype aliases: bfloat16 was refused there only.
    from tests.conftest import run_cli

    args = ["plan", "--gpu", "h100", "--gpus", "256", "--params", "7B", "-f", "json"]
    spelled, plain = run_cli(args + ["--dtype", "bfloat16"]), run_cli(args + ["--dtype", "bf16"])
    assert spelled.code == plain.code == 0, spelled.stderr
    assert json.loads(spelled.stdout)[0]["peak_flops_per_second"] == json.loads(plain.stdout)[0]["peak_flops_per_second"]


def test_whole_sequence_batch_rounds_to_the_data_parallel_multiple():
    assert whole_sequence_batch(12.9e6, 4096, 256) == 3072  # 3,149 sequences -> 12 x 256
    assert whole_sequence_batch(13.6e6, 4096, 256) == 3072  # 3,320 sequences: rounded down, never past the law
    assert whole_sequence_batch(1e3, 4096, 8) == 8  # at least one sequence per replica


def test_fixed_point_converges_and_reports_its_iterations():
    # A contraction m -> 0.3 + 0.25 (m - 0.3): plain iteration settles on 0.3 from 0.4.
    mfu, history, remark = solve_mfu(lambda m: 0.3 + 0.25 * (m - 0.3), 0.4)
    assert mfu == pytest.approx(0.3, abs=2e-3) and history[0] == 0.4 and len(history) <= 6 and remark is None
    # A steep one (slope -1.8: a bigger budget buys a bigger model at a lower MFU) makes plain
    # iteration oscillate outwards; the bracket and bisection still find 0.55 within the tolerance.
    steep = lambda m: 0.55 - 1.8 * (m - 0.55)
    mfu, history, remark = solve_mfu(steep, 0.4)
    assert abs(steep(mfu) - mfu) <= 1e-3 and remark is None and len(history) <= 20


def test_fixed_point_on_a_jump_takes_the_side_that_finishes_in_time():
    # The layout flips at 0.42: no MFU reproduces itself; the answer is the side where the layout
    # runs at least as fast as assumed, and the remark says so.
    mfu, history, remark = solve_mfu(lambda m: 0.45 if m < 0.42 else 0.38, 0.4)
    assert 0.419 < mfu < 0.42 and remark and "jumps" in remark


def test_fixed_point_fails_clearly_when_it_cannot_converge():
    # Creeping by 0.002 per step never brackets within 20 evaluations.
    with pytest.raises(WorkError, match="did not converge in 20 iterations"):
        solve_mfu(lambda m: m + 0.002, 0.4)
    with pytest.raises(WorkError, match="MFU of"):
        solve_mfu(lambda m: 1.7, 0.4)


def test_layout_equals_the_layout_search_for_that_model(plan_row):
    from llmplan.model import arch
    from llmplan.model.propose import propose
    from llmplan.systems.layout_search import search
    from llmplan.presets import catalog
    from llmplan.systems.gpu import GPU
    from llmplan.systems.layout import Run

    (shape,) = propose(plan_row["params"], n=1, context=plan_row["seq"])
    assert arch.params(shape) == plan_row["shape_params"]
    cluster = GPU.from_preset(catalog().get("gpus", "h100"), "bf16")
    best = search(shape, Run(seq=plan_row["seq"], global_batch=plan_row["global_batch"]), cluster, 256, top=1).best[0]
    assert {k: plan_row[k] for k in best.layout.keys()} == best.layout.keys()
    assert plan_row["step_seconds"] == pytest.approx(best.step.step_seconds, rel=1e-12)
    assert plan_row["memory_per_gpu_bytes"] == round(best.memory.total_bytes) <= 80e9
    # The batch the layout runs is whole sequences of micro-batch x data-parallel size.
    assert plan_row["global_batch"] == plan_row["micro_batch"] * plan_row["dp"] * plan_row["micro_batches"]


def test_mfu_auto_converges_on_the_throughput_models_mfu(cli, auto_row):
    result = cli(["plan", *HARDWARE, "--mfu", "auto", "-f", "json"])
    row = one(result)
    assert row["mfu_source"] == "layout" and row["mfu_iterations"] >= 2
    assert row["mfu"] == auto_row["mfu"]  # 'auto' is the default
    assert "a fixed point found in" in result.stderr
    # Self-consistent: the layout's 6ND utilisation at the plan is the planned MFU, within 1%.
    achieved = 6 * row["params"] * row["global_batch_tokens"] / (row["step_seconds"] * 256 * 989.4e12)
    assert achieved == pytest.approx(row["mfu"], rel=0.01)
    assert row["wall_seconds"] == pytest.approx(30 * 86400, rel=1e-12)
    # The budget follows the MFU: C = 256 x peak x MFU x 30 days x 0.9.
    assert row["flops"] == pytest.approx(256 * 989.4e12 * row["mfu"] * 30 * 86400 * 0.9, rel=1e-12)


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


def test_mfu_auto_fails_with_exit_1_when_no_layout_fits(cli):
    # A year on one 24 GB L4 buys a 3.3B model whose training states do not fit: there is no step
    # time to take the MFU from, so the work fails (exit 1), one line, no traceback.
    result = cli(["plan", "--gpu", "l4", "--gpus", "1", "--days", "365", "--mfu", "auto", "-f", "json"])
    assert result.code == 1 and result.stdout == ""
    assert "--mfu auto" in result.stderr and "give --mfu X" in result.stderr and "Traceback" not in result.stderr
    # With a fixed MFU the same plan is a row that says no layout fits (a "no" is a row, not an error);
    # by default the plan falls back to MFU 0.4 and warns.
    row = one(cli(["plan", "--gpu", "l4", "--gpus", "1", "--days", "365", "--mfu", "0.4", "-f", "json"]))
    assert row["tp"] is None and row["step_seconds"] is None
    result = cli(["plan", "--gpu", "l4", "--gpus", "1", "--days", "365", "-f", "json"])
    row = one(result)
    assert row["mfu"] == 0.4 and row["mfu_source"] == "default" and "no layout fits" in result.stderr


def test_optimal_mfu_auto_is_the_plans_fixed_point(cli):
    opt = one(cli(["optimal", *HARDWARE, "--mfu", "auto", "-f", "json"]))
    plan = one(cli(["plan", *HARDWARE, "--mfu", "auto", "-f", "json"]))
    assert opt["mfu"] == plan["mfu"] and opt["flops"] == pytest.approx(plan["flops"], rel=1e-12)
    # On a jump (no MFU reproduces itself) the plan keeps the law's N at the side that finishes in time
    # and trains it for the time given; optimal re-solves the law at the layout's MFU: N within 5%.
    assert plan["params"] == pytest.approx(opt["params"], rel=0.05)
    assert cli(["optimal", *HARDWARE, "--mfu", "auto", "--law", "all"]).code == 2


def test_layout_equals_the_layout_commands_for_that_shape(cli, plan_row):
    # `llmplan layout` with the plan's shape, GPUs, sequence and batch ranks the same layout first.
    r = plan_row
    args = ["layout", "--layers", str(r["shape_layers"]), "--d-model", str(r["shape_d_model"]), "--heads", str(r["shape_heads"]), "--kv-heads", str(r["shape_kv_heads"]),
            "--ffn", str(r["shape_ffn"]), "--vocab", str(r["shape_vocab"]), "--gpu", "h100", "--gpus", "256",
            "--seq", str(r["seq"]), "--global-batch", str(r["global_batch"]), "--top", "1", "-f", "json"]
    (best,) = json.loads(cli(args).stdout)
    for key in ("tp", "pp", "vp", "dp", "cp", "ep", "zero", "micro_batch", "micro_batches", "recompute", "sequence_parallel", "step_seconds"):
        assert r[key] == best[key], key
    assert r["memory_per_gpu_bytes"] == best["total_bytes"]
    # The layout command's MFU counts attention too (PaLM App. B); the plan's one MFU counts 6ND, as its budget does.
    assert best["mfu"] > 6 * r["params"] * r["global_batch_tokens"] / (r["step_seconds"] * 256 * 989.4e12) * 0.9


def test_a_data_constrained_plan_fills_its_time_with_repeated_data():
    # Where the MFU's fixed point jumps between layouts, the plan trains the layout's whole steps for the time given;
    # with --unique-tokens its loss is the data-constrained law's at that N and D (Muennighoff et al. 2023) and its
    # epochs D / U, not a refusal (the law's solver takes budgets only).
    from types import SimpleNamespace

    from llmplan.planning.plan import _fill_time
    from llmplan.scaling.data_constrained import MUENNIGHOFF_2023, data_constrained_loss

    record = {"mfu": 0.45, "tokens": 1.0e12, "training_seconds": 2.0e6, "step_seconds": 20.0, "global_batch_tokens": 16 * 2**20,
              "params": 50e9}
    said = _fill_time(record, MUENNIGHOFF_2023, SimpleNamespace(gpus=256, peak=989.4e12), 200e9, None, "jumps")
    D = 100_000 * 16 * 2**20  # 2e6 s of 20 s steps
    assert record["tokens"] == D and record["epochs"] == pytest.approx(D / 200e9)
    assert record["loss"] == pytest.approx(data_constrained_loss(50e9, D, 200e9, MUENNIGHOFF_2023), rel=1e-12)
    assert "to fill the time given" in said
