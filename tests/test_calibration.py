"""Each end-to-end calibration run (tests/calibration_runs.py: the sources named for each stack, nothing else)
within its stated tolerance; the tolerances and their reasons are calibration_runs.TOLERANCE and, for the
Megatron papers, tests/test_throughput.py."""

from __future__ import annotations

import pytest

from calibration_runs import TOLERANCE, llm_foundry_a100, megatron_readme, torchtitan_a100, torchtitan_h100

README = megatron_readme()
TITAN = torchtitan_a100() + torchtitan_h100()
FOUNDRY = llm_foundry_a100()


@pytest.mark.parametrize("run", README + TITAN + FOUNDRY, ids=lambda r: f"{r.source}-{r.case}")
def test_calibration_run_within_its_tolerance(run):
    assert abs(run.error) <= run.tolerance, f"{run.source} {run.case}: {run.error:+.1%} (tolerance {run.tolerance:.0%})"


def test_the_h100_runs_beat_a_constant_40_percent_mfu():
    # Over every H100 calibration run (the Megatron-LM README's table, Llama 3's 8K rows, torchtitan's 405B row) the model's
    # mean |error| is below a constant 40% MFU's (10% against 12%). Megatron's eleven alone do not show it (11% against
    # 10%): the README's table sits at 41-49% MFU, where the constant is nearly right, and at the sustained clock the
    # model is slow on it (TOLERANCE says why); the runs far from 40% (torchtitan's 405B at 29%) are where it misses.
    from calibration_runs import llama3

    runs = [r for r in README + llama3() + TITAN if r.gpu.startswith("h100")]
    model = sum(abs(r.error) for r in runs) / len(runs)
    constant = sum(abs(r.constant_error) for r in runs) / len(runs)
    assert len(runs) == 12 and model < constant, (model, constant)


def test_every_source_states_its_tolerance():
    for source, value in TOLERANCE.items():
        assert value is None or (0 < value[0] < 1 and value[1])


def test_the_published_layouts_fit_under_their_stack():
    # Every layout these runs used fits the memory model under the stack as it ran: torchtitan's A100 rows with the
    # Triton fused RMSNorm their configs set (13B without checkpointing: 90 GB with eager norms, which did run), and
    # llm-foundry's 30B at micro-batch 3 with Composer's one-tensor-at-a-time DecoupledAdamW (83 GB with foreach's
    # whole-shard temporaries).
    assert all(r.fits for r in README + TITAN + FOUNDRY)


def test_the_stacks_say_their_calibration_error():
    # presets/stacks.toml `calibration` (what a row's note says of how sure it is) is what these runs give, to the
    # 0.1% it is written in; a change to the model that moves them must move the presets too
    # (python tests/calibration_runs.py prints the lines).
    from calibration_runs import all_runs, calibration_lines
    from llmplan.systems.stack import load

    for stack, lines in calibration_lines(all_runs()).items():
        s = load(stack)
        assert sorted(s.calibration) == sorted(lines), stack
        assert set(s.calibrated) == {line.split(":")[0] for line in lines}, stack
