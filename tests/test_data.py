"""`llmplan data`: the formulas against the papers' own numbers, each with its tolerance and source."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from conftest import REPO


def run_json(cli, *args):
    result = cli([*args, "-f", "json"])
    assert result.code == 0, result.stderr
    return json.loads(result.stdout)


# ---------------------------------------------------------------- BloombergGPT (Wu et al. 2023, arXiv:2303.17564)


def test_bloomberg_regressions_reproduce_the_printed_values():
    """Sec. 3.2 prints 52.993B / 1111.112B (Approach 1) and 49.753B / 1175.766B (Approach 2); the paper does not
    state the FLOPs it plugged in (inverting the four gives 3.46e23-3.55e23), so 2% at C = 3.55e23."""
    from llmplan.scaling import domain as dom

    C = 3.55e23
    assert dom.approach1_params(C) == pytest.approx(52.993e9, rel=0.02)
    assert dom.approach1_tokens(C) == pytest.approx(1111.112e9, rel=0.02)
    assert dom.approach2_params(C) == pytest.approx(49.753e9, rel=0.02)
    assert dom.approach2_tokens(C) == pytest.approx(1175.766e9, rel=0.02)


def test_levine_shape_reproduces_bloomberg():
    """Sec. 3.2: L = 70 gives D = 7510 (exact to the integer); Table 4: 70 x 7,680 with V = 131,072 is 50.6B (0.1%)."""
    from llmplan.model.depth_width import decoder_params, levine_shape, levine_width

    assert round(levine_width(70)) == 7510
    assert [round(levine_width(L)) for L in (60, 65, 75)] == [4311, 5690, 9912]  # the sweep in the reference notes
    assert levine_shape(50e9) == (70, pytest.approx(7510.07, abs=0.01))
    assert decoder_params(70, 7680, 131_072) == pytest.approx(50.6e9, rel=1e-3)


def test_data_domain_reproduces_bloomberggpt(cli):
    """Table 1, Sec. 3.2 and Table 4: 363B FinPile + 345B public tokens, 1.3M A100-40GB hours at the measured
    102 TFLOP/s (MFU 102/312 = 0.327), 0.75 of it for Chinchilla: about 50B params (2%, the paper's 'about'
    with the printed A2 49.8B), 70 layers, D = 7,510 before rounding, 51.27% domain share, and 0.80 epochs
    of FinPile at the 569B tokens trained (0.5127 x 569 / 363; 1%)."""
    [row] = run_json(cli, "data", "domain", "--domain-tokens", "363B", "--general-tokens", "345B", "--gpu-hours", "1.3M",
                     "--gpu", "a100-40gb", "--mfu", "0.327", "--trained-tokens", "569B")
    assert row["effective_flops"] == pytest.approx(3.58e23, rel=0.01)
    assert row["params"] == pytest.approx(50e9, rel=0.02)
    assert row["shape_layers"] == 70
    assert round(row["shape_d_model_levine"]) == 7510
    assert row["domain_share"] == pytest.approx(0.5127, abs=1e-4)
    assert row["domain_epochs"] == pytest.approx(0.80, rel=0.01)
    assert row["tokens"] == 569e9 and row["planned_tokens"] == 708e9
    assert row["data_limited"] is True
    # the buffer: the planned run (all 708B tokens) leaves at least 30% of the checkpointing-adjusted budget
    assert 6 * row["params"] * row["planned_tokens"] <= 0.7 * row["effective_flops"]


def test_domain_share_bound_by_epochs():
    """With unlimited general text the domain share is min(1, e U / D) (the reference notes' table: 50B domain
    tokens at D = 577B and 1 epoch: 8.7%)."""
    from llmplan.scaling.domain import domain_epochs, domain_share

    assert domain_share(50e9, 577e9, 1) == pytest.approx(0.0867, abs=1e-3)
    assert domain_share(50e9, 183e9, 4) == 1.0
    assert domain_epochs(0.5127, 569e9, 363e9) == pytest.approx(0.8037, abs=1e-4)


def test_domain_rows_per_budget(cli):
    rows = run_json(cli, "data", "domain", "--domain-tokens", "50B", "--budget", "1e22,1e23,1e24", "--max-domain-epochs", "4")
    assert len(rows) == 3
    assert all(r["domain_epochs"] <= 4 + 1e-9 for r in rows)
    shares = [r["domain_share"] for r in rows]
    assert shares == sorted(shares, reverse=True)  # a bigger budget dilutes the domain text
    assert rows[0]["general_tokens"] is None and rows[0]["available_tokens"] is None


# ---------------------------------------------------------------- Muennighoff et al. 2023 (arXiv:2305.16264)


def test_repetition_cost_of_perplexity_filter():
    """Sec. 7: C4 perplexity top 25% leaves 44B unique tokens for 84B trained; with R_D* = 15.387756,
    D' = 82.84B (the reference notes' derived value, 0.01%); dedup: 21B unique, D' = 78.24B."""
    from llmplan.scaling.data_filtering import repetition_cost
    from llmplan.scaling.data_constrained import effective_data

    assert effective_data(84e9, 44e9) == pytest.approx(82.84e9, rel=1e-4)
    assert effective_data(84e9, 21e9) == pytest.approx(78.24e9, rel=1e-4)
    assert repetition_cost(84e9, 44e9) == pytest.approx(0.014, abs=5e-4)


def test_filter_table_at_1e24_matches_reference():
    """The reference notes' derived table (15T pool, D ~ 1.81T): 1.4% kept -> 8.7 epochs, D'/D = 0.81;
    3% -> 4.1 epochs, 0.93; 8.7% -> 1.4 epochs, 0.996 (to the printed digits)."""
    from llmplan.planning.data import filter_rows

    rows, summary = filter_rows(1e24, 15e12, [0.014, 0.03, 0.087, 0.2], hours_per_trillion=400)
    expect = [(8.6, 0.81), (4.0, 0.93), (1.4, 0.996), (0.6, 1.0)]
    for row, (epochs, ratio) in zip(rows, expect):
        assert row["epochs"] == pytest.approx(epochs, abs=0.05)
        assert row["effective_tokens"] / row["tokens"] == pytest.approx(ratio, abs=0.005)
    assert summary["scoring_gpu_hours"] == pytest.approx(6000)  # FineWeb: 6,000 H100-hours for 15T tokens
    assert all(r["loss"] >= r["loss_unlimited_data"] for r in rows)


def test_epochs_at_cost_inverts_the_cost():
    from llmplan.scaling.data_filtering import epochs_at_cost, repetition_cost

    e = epochs_at_cost(0.05)
    assert repetition_cost(e, 1.0) == pytest.approx(0.05, abs=1e-9)


def test_filter_command_has_required_keys(cli):
    rows = run_json(cli, "data", "filter", "--pool", "15T", "--budget", "1e24", "--keep", "0.014,0.2")
    for key in ("keep", "unique_tokens", "tokens", "epochs", "effective_tokens", "loss"):
        assert key in rows[0]
    assert [r["keep"] for r in rows] == [0.014, 0.2]


def test_priors_are_sourced_and_never_a_loss(cli):
    rows = run_json(cli, "data", "filter", "--priors")
    assert rows and all(r["source"] and r["evidence"] in ("primary", "secondary") for r in rows)
    assert not any("loss" in key for key in rows[0])


def test_filter_table_at_80_columns(cli):
    env = {**os.environ, "COLUMNS": "80", "NO_COLOR": "1"}
    env.pop("LLMPLAN_PRESETS", None)
    result = subprocess.run([sys.executable, "-m", "llmplan", "data", "filter", "--pool", "15T", "--budget", "1e24", "-f", "table"],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    for word in ("keep", "epochs", "effective", "loss", "PRIORS", "5x"):
        assert word in result.stdout


# ---------------------------------------------------------------- Goyal et al. 2024 (arXiv:2404.07177)


def test_goyal_decay_vector():
    """The reference notes' check of the form with the authors' ablation seed b = -0.131, tau = 3:
    utility halves every 3 epochs (-0.131, -0.104, -0.0825, -0.0655, ...)."""
    from llmplan.scaling.data_filtering import decayed_utility

    got = [decayed_utility(-0.131, 3, k) for k in range(10)]
    expect = [-0.131, -0.104, -0.0825, -0.0655, -0.052, -0.0413, -0.0328, -0.026, -0.0206, -0.0164]
    assert got == pytest.approx(expect, abs=6e-4)
    assert decayed_utility(-0.131, 3, 3) == pytest.approx(-0.131 / 2)


def test_goyal_fit_recovers_constants(cli):
    """tests/data/bucket_runs.csv is generated from the form with a = 3, d = 1.8 and (b, tau) =
    (-0.30, 4), (-0.24, 3), (-0.20, 2): the fit gets them back (1e-3)."""
    from llmplan.io.bucket_runs import read_bucket_runs
    from llmplan.scaling.data_filtering import fit_buckets

    runs = read_bucket_runs(str(REPO / "tests" / "data" / "bucket_runs.csv"))
    fit = fit_buckets(runs.bucket, runs.tokens, runs.unique_tokens, runs.loss)
    assert fit.a == pytest.approx(3.0, rel=1e-3) and fit.d == pytest.approx(1.8, rel=1e-3)
    assert fit.b == pytest.approx([-0.30, -0.24, -0.20], rel=1e-3)
    assert fit.tau == pytest.approx([4.0, 3.0, 2.0], rel=1e-3)
    rows = run_json(cli, "data", "filter", "--buckets", str(REPO / "tests" / "data" / "bucket_runs.csv"), "--bucket-tokens", "100B", "--tokens", "1T")
    assert sum(r["best"] for r in rows) == 1 and [r["buckets"] for r in rows] == [1, 2, 3]


# ---------------------------------------------------------------- bad input: one line, exit 2


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["data", "filter", "--pool", "15T", "--budget", "1e24", "--keep", "1.5"], "not in (0, 1]"),
        (["data", "filter", "--pool", "15T", "--budget", "1e24", "--keep", "0"], "not in (0, 1]"),
        (["data", "filter", "--pool", "-5T", "--budget", "1e24"], "pool size"),
        (["data", "filter", "--pool", "15T"], "give a budget"),
        (["data", "filter", "--budget", "1e24"], "--pool"),
        (["data", "filter", "--buckets", "tests/data/fit_runs_noisy.csv", "--bucket-tokens", "1B", "--tokens", "1T"], "no bucket column"),
        (["data", "filter", "--buckets", "tests/data/bucket_runs.csv", "--tokens", "1T"], "--bucket-tokens"),
        (["data", "domain", "--budget", "1e23"], "--domain-tokens"),
        (["data", "domain", "--domain-tokens", "50B", "--budget", "1e23", "--buffer", "1.2"], "--buffer"),
        (["data", "domain", "--domain-tokens", "0", "--budget", "1e23"], "token count"),
    ],
)
def test_bad_input_is_one_line_exit_2(cli, monkeypatch, args, fragment):
    monkeypatch.chdir(REPO)
    result = cli(args)
    assert result.code == 2, (result.stdout, result.stderr)
    assert len(result.stderr.strip().splitlines()) == 1 and fragment in result.stderr, result.stderr


# ---------------------------------------------------------------- Ye et al. 2024 (arXiv:2403.16952)


def test_mixing_law_formula_vector():
    """The reference notes' formula check of Eq. 6 (authors' code, mixture_law_): c = 1, k = 1, t = [-1, 0.5],
    r = [0.6, 0.4] -> 1 + e^-0.4 = 1.6703."""
    from llmplan.scaling.data_mixing import mixture_loss

    assert mixture_loss([0.6, 0.4], 1.0, 1.0, [-1.0, 0.5]) == pytest.approx(1 + math.exp(-0.4), abs=1e-12)
    assert mixture_loss([0.6, 0.4], 1.0, 1.0, [-1.0, 0.5]) == pytest.approx(1.6703, abs=1e-4)


def test_mixing_law_fit_and_optimum(cli):
    """tests/data/mix_runs.csv: 20 mixtures of 3 domains, losses from the law with (c, k, t) =
    (1.2, 0.8, [-1.5, 0.3, 0.2]) and (2.0, 1.1, [0.2, -0.4, -0.9]). The fit predicts every run (1e-5) and the
    optimum of the equal-weight target is the brute-force grid's (github 0.435, books 0, cc 0.565; 1/400 grid)."""
    from llmplan.io.mix_runs import read_mix_runs
    from llmplan.scaling.data_mixing import fit_mixture, mixture_loss

    runs = read_mix_runs(str(REPO / "tests" / "data" / "mix_runs.csv"))
    fit = fit_mixture(runs.domains, runs.targets, runs.R, runs.losses)
    assert fit.c == pytest.approx([1.2, 2.0], rel=1e-4)
    for i in range(2):
        for r, y in zip(runs.R, runs.losses[i]):
            assert mixture_loss(r, fit.c[i], fit.k[i], fit.t[i]) == pytest.approx(y, abs=1e-5)
    rows = run_json(cli, "data", "mix", str(REPO / "tests" / "data" / "mix_runs.csv"))
    shares = {r["domain"]: r["mixture_share"] for r in rows}
    assert shares == pytest.approx({"github": 0.435, "books": 0.0, "cc": 0.565}, abs=0.003)
    assert all(r["loss"] <= r["loss_best_run"] for r in rows)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["data", "mix", "tests/data/fit_runs_noisy.csv"], "r_<domain>"),
        (["data", "mix", "tests/data/mix_runs.csv", "--weights", "1,2,3"], "3 weights for 2 loss columns"),
        (["data", "mix", "tests/data/nope.csv"], "cannot read"),
    ],
)
def test_mix_bad_input(cli, monkeypatch, args, fragment):
    monkeypatch.chdir(REPO)
    result = cli(args)
    assert result.code == 2, (result.stdout, result.stderr)
    assert len(result.stderr.strip().splitlines()) == 1 and fragment in result.stderr, result.stderr


# ---------------------------------------------------------------- review fixes: bounded cost, degenerate fits, nonsense budgets


def test_goyal_error_cost_is_bounded_and_unchanged():
    """Billions of epochs cost at most ~40 tau passes (utilities below 1e-12 of the first count as 0), and the
    passes at the last listed utility telescope; values at a few epochs are the pass-by-pass product's."""
    import time

    from llmplan.scaling.data_filtering import bucket_error, goyal_error, mixture_error

    def product(n, S, a, bs, d):  # the form pass by pass, as written in the paper
        log_y, seen, k = bs[0] * math.log(min(n, S)), min(n, S), 1
        while seen < n:
            nxt = min(seen + S, n)
            log_y += bs[min(k, len(bs) - 1)] * math.log(nxt / seen)
            seen, k = nxt, k + 1
        return a * math.exp(log_y) + d

    for n in (0.5, 2.0, 3.5, 37.2):
        assert goyal_error(n, 1.0, 3.0, [-0.3, -0.2], 1.8) == pytest.approx(product(n, 1.0, 3.0, [-0.3, -0.2], 1.8), rel=1e-12)
        bs = [-0.3 * 0.5 ** (k / 4.0) for k in range(math.ceil(n))]
        assert bucket_error(n, 1.0, 3.0, -0.3, 4.0, 1.8) == pytest.approx(product(n, 1.0, 3.0, bs, 1.8), rel=1e-12)
    start = time.perf_counter()
    far = mixture_error(1e9, 1e-9, 3.0, [-0.3, -0.24, -0.2], [4.0, 3.0, 2.0], 1.8)
    assert math.isfinite(far) and time.perf_counter() - start < 1.0
    assert bucket_error(1e9, 1e-3, 3.0, -0.3, 4.0, 1.8) == pytest.approx(bucket_error(1e6, 1e-3, 3.0, -0.3, 4.0, 1.8), rel=1e-9)


@pytest.mark.parametrize("bucket_tokens, tokens", [("1", "1e9"), ("10M", "15T")])
def test_bucket_target_far_beyond_the_runs_ends(bucket_tokens, tokens):
    """`data filter --buckets ... --bucket-tokens 1 --tokens 1e9` used to loop once per epoch (1e9 of them)."""
    result = subprocess.run([sys.executable, "-m", "llmplan", "data", "filter", "--buckets", "tests/data/bucket_runs.csv",
                             "--bucket-tokens", bucket_tokens, "--tokens", tokens, "-f", "json"],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert [r["buckets"] for r in json.loads(result.stdout)] == [1, 2, 3]


def _write(path, header, lines):
    path.write_text(header + "\n" + "\n".join(lines) + "\n")
    return str(path)


def _mix_variant(tmp_path, name, change):
    import csv

    rows = list(csv.reader((REPO / "tests" / "data" / "mix_runs.csv").open()))
    return _write(tmp_path / name, ",".join(rows[0]), [",".join(change(i, r, rows[1])) for i, r in enumerate(rows[1:])])


@pytest.mark.parametrize("case, fragment", [
    ("same_runs", "same loss"),
    ("same_tokens", "same tokens"),
    ("huge_loss", "below 1000"),
    ("same_mixture", "same mixture"),
    ("same_mix_loss", "same loss"),
    ("huge_mix_loss", "below 1000"),
])
def test_degenerate_fits_are_refused(cli, tmp_path, case, fragment):
    """Runs that do not vary used to fit with 'RMSE 0 (fitted)'; a loss of 1e308 used to print RuntimeWarnings then exit 1."""
    header = "bucket,tokens,unique_tokens,loss"
    if case == "same_runs":
        args = ["filter", "--buckets", _write(tmp_path / "b.csv", header, ["a,1e9,1e9,3.0"] * 8)]
    elif case == "same_tokens":
        args = ["filter", "--buckets", _write(tmp_path / "b.csv", header, [f"a,1e9,1e9,{3 + i / 10}" for i in range(8)])]
    elif case == "huge_loss":
        lines = (REPO / "tests" / "data" / "bucket_runs.csv").read_text().splitlines()
        args = ["filter", "--buckets", _write(tmp_path / "b.csv", lines[0], [lines[1].rsplit(",", 1)[0] + ",1e308", *lines[2:]])]
    elif case == "same_mixture":
        args = ["mix", _mix_variant(tmp_path, "m.csv", lambda i, r, first: first[:3] + r[3:])]
    elif case == "same_mix_loss":
        args = ["mix", _mix_variant(tmp_path, "m.csv", lambda i, r, first: r[:3] + first[3:])]
    else:
        args = ["mix", _mix_variant(tmp_path, "m.csv", lambda i, r, first: r[:3] + (["1e308"] if i == 0 else r[3:4]) + r[4:])]
    if args[0] == "filter":
        args += ["--bucket-tokens", "1B", "--tokens", "1T"]
    result = cli(["data", *args])
    assert result.code == 2, (result.stdout, result.stderr)
    assert len(result.stderr.strip().splitlines()) == 1 and fragment in result.stderr, result.stderr
    assert "Warning" not in result.stderr


def test_bucket_fit_at_its_bound_is_warned(cli, tmp_path):
    """Runs with no decay at all put tau at the top of the range searched (1e4 epochs): a warning, not a quiet 'fitted'."""
    lines = [f"a,{t:g},1e9,{3 * (t / 1e9) ** -0.3 + 1.8:.9f}" for t in (1e9, 2e9, 4e9, 8e9, 16e9)]
    result = cli(["data", "filter", "--buckets", _write(tmp_path / "b.csv", "bucket,tokens,unique_tokens,loss", lines),
                  "--bucket-tokens", "1B", "--tokens", "10B", "-f", "json"])
    assert result.code == 0, result.stderr
    assert "tau (a) at the edge of the range searched" in result.stderr


@pytest.mark.parametrize("args, fragment", [
    (["data", "filter", "--pool", "15T", "--budget", "1"], "below the 1.0M"),
    (["data", "filter", "--pool", "15T", "--budget", "1e24", "--tokens", "1e30"], "below the 1.0M"),
    (["data", "domain", "--domain-tokens", "363B", "--budget", "1e23", "--round-to", "1000000000"], "give 1 to 1024"),
    (["data", "domain", "--domain-tokens", "363B", "--budget", "1e30"], "beyond the 10.00T"),
    (["data", "domain", "--domain-tokens", "363B", "--budget", "1e10"], "below the 1.0M"),
])
def test_nonsense_budgets_and_rounding_are_refused(cli, args, fragment):
    """These used to print rows with exit 0: a 0.09-parameter model, a 63T-parameter one, a hidden size rounded to 1e9."""
    result = cli(args)
    assert result.code == 2, (result.stdout, result.stderr)
    assert len(result.stderr.strip().splitlines()) == 1 and fragment in result.stderr, result.stderr
