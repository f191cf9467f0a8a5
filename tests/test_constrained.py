"""Data-constrained law (Muennighoff et al. 2023) against its repository's own worked examples.

Golden values: huggingface/datablations README, section "Parametric Fit" (commit 0c765022):
scaling_law(6.34e9, 242e9, 25e9) = 2.2256440889984477, scaling_law(8.67e9, 178e9, 25e9) =
2.2269634075087867, and its optimal_allocation(8.67e9, 178e9, 25e9) printing "227B tokens, 9.1 epochs,
6.8B parameters" at the same compute.
"""

from __future__ import annotations

import json
import math

import pytest

from llmplan.scaling.data_constrained import (
    MUENNIGHOFF_2023,
    D_to_N,
    constrained_loss_row,
    constrained_optimal_row,
    data_constrained_loss,
    effective_data,
    effective_params,
    law_from_constants,
    optimal_constrained,
    optimal_unlimited,
)
from llmplan.errors import InputError
from llmplan.scaling.laws import chinchilla_loss, chinchilla_optimal

U = 25e9  # the README's unique-token budget


@pytest.mark.parametrize(
    "N, D, expected",
    [
        (6.34e9, 242e9, 2.2256440889984477),  # README "Parametric Fit", first print
        (8.67e9, 178e9, 2.2269634075087867),  # README "Parametric Fit", second print
    ],
)
def test_readme_worked_examples_to_many_digits(N, D, expected):
    # The README prints 17 significant digits from the same closed form in float64; only rounding
    # order can differ, so 1e-12 relative is tight and still safe.
    assert data_constrained_loss(N, D, U) == pytest.approx(expected, rel=1e-12, abs=0)


def test_constants_are_the_readmes():
    law = MUENNIGHOFF_2023
    # scaling-laws.md 3.5 also prints A, B, E rounded: 520.82, 1487.72, 1.8691
    assert law.A == pytest.approx(520.82, abs=0.005)
    assert law.B == pytest.approx(1487.72, abs=0.005)
    assert law.E == pytest.approx(1.8691, abs=0.00005)
    assert (law.rd_star, law.rn_star) == (15.387756, 5.309743)


def test_readme_optimal_allocation_same_compute():
    # README: a 500-point grid search from (8.67e9, 178e9, 25e9) at fixed N*D prints
    # "227B tokens, 9.1 epochs, 6.8B parameters". The continuous optimum must round to those digits:
    # tokens within 0.5B of 227B, epochs within 0.05 of 9.1, params within 0.05B of 6.8B.
    C = 6 * 8.67e9 * 178e9
    N, D, L = optimal_constrained(C, U)
    assert abs(D - 227e9) <= 0.5e9
    assert abs(D / U - 9.1) <= 0.05
    assert abs(N - 6.8e9) <= 0.05e9
    assert 6 * N * D == pytest.approx(C, rel=1e-12)
    # and it beats the starting point, which sits on the same compute
    assert L < data_constrained_loss(8.67e9, 178e9, U)


def test_optimum_is_a_minimum_along_the_budget():
    C, unique = 1e23, 1e11
    N, D, L = optimal_constrained(C, unique)
    for factor in (0.9, 0.99, 0.999, 1.001, 1.01, 1.1):
        n = N * factor
        assert data_constrained_loss(n, C / (6 * n), unique) >= L - 1e-13


def test_unlimited_data_reduces_to_the_chinchilla_closed_form():
    # With U infinite the law is E + A/N^alpha + B/D^beta up to N_opt(D), and its optimum is Hoffmann's Eq. 4.
    law = MUENNIGHOFF_2023
    N, D = 1e9, 50e9  # N below N_opt(D): no excess-parameter penalty
    assert N < D_to_N(D)
    assert data_constrained_loss(N, D, math.inf) == pytest.approx(chinchilla_loss(N, D, law.E, law.A, law.B, law.alpha, law.beta), rel=1e-14)
    C = 1e22
    N_closed, D_closed = chinchilla_optimal(C, law.A, law.B, law.alpha, law.beta)
    N_num, D_num, _ = optimal_constrained(C, 1e40)
    assert N_num == pytest.approx(N_closed, rel=1e-7)
    assert optimal_unlimited(C) == pytest.approx((N_closed, D_closed), rel=1e-12)


def test_fewer_tokens_than_unique_data_is_unlimited():
    # U_D = min(U, D): a run shorter than one pass sees only D unique tokens.
    N, D = 1e9, 20e9
    assert effective_data(D, 1e12) == D
    assert data_constrained_loss(N, D, 1e12) == data_constrained_loss(N, D, math.inf)


def test_repetition_is_worth_less_and_four_epochs_almost_as_good():
    # Paper abstract: up to about 4 epochs repeated data is almost as good as unique data.
    d4 = effective_data(4 * U, U)
    assert 0.9 < d4 / (4 * U) < 1.0
    ratios = [effective_data(k * U, U) / (k * U) for k in (1, 2, 4, 8, 16, 64)]
    assert ratios[0] == 1.0 and all(a > b for a, b in zip(ratios, ratios[1:]))
    # excess parameters: N' < N once N exceeds N_opt(U)
    big = 10 * D_to_N(U)
    assert effective_params(big, 10 * U, U) < big
    assert effective_params(D_to_N(U) / 2, 10 * U, U) == D_to_N(U) / 2


def test_rows_carry_the_contract_keys():
    C = 6 * 8.67e9 * 178e9
    row = constrained_optimal_row(C, U)
    assert row["epochs"] == pytest.approx(row["tokens"] / U)
    assert row["loss_unlimited_data"] < row["loss"]
    assert row["params"] * row["tokens"] * 6 == pytest.approx(C, rel=1e-12)
    loss = constrained_loss_row(6.34e9, 242e9, U)
    assert loss["loss"] == pytest.approx(2.2256440889984477, rel=1e-12)
    assert loss["loss_unlimited_data"] < loss["loss"] and loss["effective_tokens"] < 242e9


def test_law_from_constants_round_trips():
    law = MUENNIGHOFF_2023
    again = law_from_constants({"E": law.E, "A": law.A, "B": law.B, "alpha": law.alpha, "beta": law.beta, "rd_star": law.rd_star, "rn_star": law.rn_star})
    assert again.loss(6.34e9, 242e9, U) == pytest.approx(2.2256440889984477, rel=1e-12)
    with pytest.raises(InputError, match="rd_star"):
        law_from_constants({"E": 1, "A": 1, "B": 1, "alpha": 0.3, "beta": 0.3})


def test_bad_budget_is_input_error():
    with pytest.raises(InputError):
        optimal_constrained(-1.0, U)
    with pytest.raises(InputError):
        optimal_constrained(1e22, 0.0)


# ------------------------------------------------------------------ the CLI


def test_cli_loss_with_unique_tokens(cli):
    result = cli(["loss", "--params", "6.34B", "--tokens", "242B", "--unique-tokens", "25B", "-f", "json"])
    assert result.code == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert row["loss"] == pytest.approx(2.2256440889984477, rel=1e-12)  # README "Parametric Fit"
    assert row["epochs"] == pytest.approx(242 / 25)
    assert "datablations issue #9" in result.stderr  # absolute losses are not expected to match


def test_cli_optimal_with_unique_tokens(cli):
    # the README's optimal_allocation example: same compute as 8.67B params on 178B tokens
    result = cli(["optimal", "--budget", "9.25956e21", "--unique-tokens", "25B", "-f", "json"])
    assert result.code == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert abs(row["tokens"] - 227e9) <= 0.5e9 and abs(row["epochs"] - 9.1) <= 0.05 and abs(row["params"] - 6.8e9) <= 0.05e9
    assert row["loss_unlimited_data"] < row["loss"]
    assert {"unique_tokens", "epochs", "loss", "loss_unlimited_data"} <= set(row)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["optimal", "--budget", "1e22", "--unique-tokens", "25B", "--law", "epoch-2024"], "muennighoff-2023"),
        (["optimal", "--unique-tokens", "25B"], "needs a budget"),
        (["optimal", "--budget", "1e22", "--unique-tokens", "25B", "--inference-tokens", "1T"], "not both"),
        (["optimal", "--budget", "1e22", "--unique-tokens", "25X"], "unique tokens"),
        (["loss", "--params", "7B", "--tokens", "1T", "--unique-tokens", "0"], "unique tokens"),
    ],
)
def test_cli_bad_input_exit_2(cli, args, fragment):
    result = cli(args)
    assert result.code == 2 and result.stdout == ""
    assert fragment in result.stderr.splitlines()[-1] and "Traceback" not in result.stderr
