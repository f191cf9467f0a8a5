"""Pictures: every plot writes a valid PNG or SVG, whole or not at all; bad paths and a missing
matplotlib are one-line input errors."""

from __future__ import annotations

import json
import os
import sys
import xml.etree.ElementTree as ET

import pytest
from pathlib import Path

pytest.importorskip("matplotlib")

from llmplan.io import plots
from llmplan.scaling.data_constrained import MUENNIGHOFF_2023, optimal_constrained
from llmplan.errors import InputError
from llmplan.scaling.laws import Law

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHINCHILLA = Law(id="chinchilla", name="c", form="chinchilla",
                 constants=dict(E=1.69337368, A=406.401018, B=410.722827, alpha=0.33917084, beta=0.2849083))


def assert_valid(path):
    data = path.read_bytes()
    if path.suffix == ".png":
        assert data.startswith(PNG_SIGNATURE) and len(data) > 1000
    else:
        root = ET.fromstring(data)
        assert root.tag.endswith("svg")
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []  # no temp file left


def runs():
    """Synthetic runs on the law (3 budgets x 5 sizes) with a deterministic wiggle."""
    N, D, L, groups = [], [], [], []
    for C in (1e18, 1e19, 1e20):
        n_opt, _ = CHINCHILLA.optimal(C)
        ns = [n_opt * f for f in (0.25, 0.5, 1, 2, 4)]
        ls = [CHINCHILLA.loss(n, C / (6 * n)) * (1 + 0.002 * ((i % 3) - 1)) for i, n in enumerate(ns)]
        groups.append({"flops": C, "params": ns, "loss": ls})
        N += ns
        D += [C / (6 * n) for n in ns]
        L += ls
    return N, D, L, groups


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_frontier(tmp_path, suffix):
    models = [("chinchilla-70b", 70e9, 1.4e12), ("gpt-3-175b", 175e9, 300e9), ("llama-2-7b", 7e9, 2e12), ("twin", 7e9, 2e12)]
    out = plots.plot_frontier(tmp_path / f"frontier{suffix}", models, CHINCHILLA)
    assert_valid(out)
    if suffix == ".svg":  # not an empty figure: every model is labelled (SVG text keeps its glyph ids)
        text = Path(out).read_text()
        for name, *_ in models:
            assert name in text or f"<!-- {name} -->" in text


def test_fit_and_isoflop(tmp_path):
    N, D, L, groups = runs()
    predicted = [CHINCHILLA.loss(n, d) for n, d in zip(N, D)]
    assert_valid(plots.plot_fit(tmp_path / "fit.png", N, D, L, predicted, CHINCHILLA))
    grouped = plots.isoflop_groups(N, D, L)  # the same three budgets, recovered from the runs
    assert [len(g["params"]) for g in grouped] == [5, 5, 5]
    assert [g["flops"] for g in grouped] == pytest.approx([g["flops"] for g in groups], rel=1e-12)
    minima = [{"flops": g["flops"], "optimal_params": CHINCHILLA.optimal(g["flops"])[0], "optimal_loss": min(g["loss"])} for g in groups]
    assert_valid(plots.plot_isoflop(tmp_path / "isoflop.svg", groups, minima, power_law=CHINCHILLA.k_a))


def test_loss_contours_plain_inference_and_data_constrained(tmp_path):
    N, D = CHINCHILLA.optimal(1e23)
    assert_valid(plots.plot_loss_contours(tmp_path / "optimal.png", CHINCHILLA, [{"params": N, "tokens": D, "label": "optimal"}]))
    assert_valid(plots.plot_loss_contours(tmp_path / "inference.svg", CHINCHILLA, [{"params": N, "tokens": D}], iso_loss=float(CHINCHILLA.loss(N, D))))
    n, d, _ = optimal_constrained(1e22, 5e10)
    assert_valid(plots.plot_loss_contours(tmp_path / "constrained.png", MUENNIGHOFF_2023, [{"params": n, "tokens": d}], unique_tokens=5e10))


@pytest.mark.parametrize("name", ["frontier.jpg", "frontier", "frontier.pdf"])
def test_bad_extension_names_the_allowed_ones(tmp_path, name):
    with pytest.raises(InputError, match=r"\.png or \.svg"):
        plots.check_plot_path(tmp_path / name)


def test_missing_folder_is_input_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        plots.check_plot_path(tmp_path / "nowhere" / "x.png")


def test_missing_matplotlib_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now raises ImportError
    with pytest.raises(InputError) as caught:
        plots.plot_frontier(tmp_path / "f.png", [("m", 7e9, 1e12)], CHINCHILLA)
    assert str(caught.value) == "plots need matplotlib: pip install 'llmplan[plot]'"
    assert list(tmp_path.iterdir()) == []


def test_failed_save_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    target = tmp_path / "frontier.png"
    target.write_bytes(b"old")

    def broken(self, *args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken)
    with pytest.raises(RuntimeError):
        plots.plot_frontier(target, [("m", 7e9, 1e12)], CHINCHILLA)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["frontier.png"]


def test_written_file_has_the_usual_mode(tmp_path):
    out = plots.plot_frontier(tmp_path / "f.png", [("m", 7e9, 1e12)], CHINCHILLA)
    mask = os.umask(0)
    os.umask(mask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~mask


# ------------------------------------------------------------------ the CLI


def test_cli_compare_plot_svg(cli, tmp_path):
    out = tmp_path / "frontier.svg"
    result = cli(["compare", "--models", "chinchilla-70b,gpt-3-175b", "--plot", str(out), "-f", "json"])
    assert result.code == 0, result.stderr
    assert len(json.loads(result.stdout)) == 2  # the rows still go to stdout
    assert_valid(out)


@pytest.mark.parametrize(
    "args",
    [
        ["optimal", "--budget", "1e23:1e25:3"],
        ["optimal", "--budget", "1e22", "--unique-tokens", "25B"],
        ["optimal", "--target-loss", "2.1", "--inference-tokens", "2T"],
    ],
)
def test_cli_optimal_plot_png(cli, tmp_path, args):
    out = tmp_path / "optimal.png"
    result = cli([*args, "--plot", str(out), "-f", "json"])
    assert result.code == 0, result.stderr
    assert_valid(out)


def test_cli_bad_extension_exit_2_before_work(cli, tmp_path):
    result = cli(["compare", "--plot", str(tmp_path / "frontier.jpg")])
    assert result.code == 2 and result.stdout == ""
    assert ".png or .svg" in result.stderr and result.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_cli_missing_matplotlib_exit_2(cli, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = cli(["optimal", "--budget", "1e24", "--plot", str(tmp_path / "o.png")])
    assert result.code == 2 and result.stdout == ""
    assert result.stderr == "llmplan: error: plots need matplotlib: pip install 'llmplan[plot]'\n"


def test_cli_plot_needs_a_loss_law(cli, tmp_path):
    result = cli(["optimal", "--budget", "1e24", "--law", "tokens-per-param", "--plot", str(tmp_path / "o.png")])
    assert result.code == 2 and "predicts loss" in result.stderr


def test_cli_fit_plot(cli, tmp_path):
    from conftest import DATA

    out = tmp_path / "fit.png"
    # a one-point start grid keeps the test quick; the picture does not depend on how the fit started
    result = cli(["fit", str(DATA / "fit_runs_exact.csv"), "--grid", "alpha=0.5,beta=0.5,e=0,a=5,b=5", "--plot", str(out), "-f", "json"])
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)[0]["method"] == "parametric"
    assert_valid(out)


def test_cli_fit_isoflop_plot(cli, tmp_path):
    N, D, L, _ = runs()
    data = tmp_path / "runs.csv"
    data.write_text("params,tokens,loss\n" + "".join(f"{n!r},{d!r},{l!r}\n" for n, d, l in zip(N, D, L)))
    out = tmp_path / "isoflop.svg"
    result = cli(["fit", str(data), "--method", "isoflop", "--plot", str(out), "-f", "json"])
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)[0]["budgets"] == 3
    assert_valid(out)
    bad = cli(["fit", str(data), "--method", "isoflop", "--plot", str(tmp_path / "isoflop.pdf")])
    assert bad.code == 2 and ".png or .svg" in bad.stderr


def test_cli_file_name_too_long_exit_2(cli, tmp_path):
    result = cli(["compare", "--plot", str(tmp_path / ("x" * 300 + ".png"))])
    assert result.code == 2 and result.stdout == "" and "internal error" not in result.stderr


# ------------------------------------------------------------------ pictures that explain themselves


def svg_texts(path) -> list[str]:
    """The text drawn in an SVG matplotlib wrote (each text line is kept as a comment beside its glyphs)."""
    import re

    return re.findall(r"<!-- (.*?) -->", Path(path).read_text())


def test_loss_contours_title_names_law_and_budget_and_the_plan_its_n_and_d(tmp_path):
    N, D = CHINCHILLA.optimal(1e24)
    law = Law(id="chinchilla", name="c", form="chinchilla", constants=CHINCHILLA.constants,
              extra={"fitted_min_params": 7e7, "fitted_max_params": 1.6e10, "fitted_min_tokens": 5e9, "fitted_max_tokens": 5e11})
    texts = svg_texts(plots.plot_loss_contours(tmp_path / "o.svg", law, [{"params": N, "tokens": D, "label": "plan"}]))
    assert "Predicted loss over (N, D) under chinchilla" in texts
    assert "plan at C = 1.00e24 FLOPs" in texts
    assert "N = 51.9B" in texts and "D = 3.21T" in texts  # the plan point's own label
    assert "range chinchilla was fitted on (beyond it: extrapolation)" in texts  # the shaded range, in the legend
    for label in ("parameters N", "training tokens D", "predicted loss", "compute-optimal frontier", "plan"):
        assert label in texts, label


def test_target_loss_curve_differs_from_the_frontier_by_style(tmp_path):
    N, D = CHINCHILLA.optimal(1e22)
    texts = svg_texts(plots.plot_loss_contours(tmp_path / "i.svg", CHINCHILLA, [{"params": N, "tokens": D}], iso_loss=2.1))
    assert "target loss 2.1" in texts and "target loss 2.1, plan at C = 1.00e22 FLOPs" in texts


def test_frontier_title_names_the_law(tmp_path):
    texts = svg_texts(plots.plot_frontier(tmp_path / "f.svg", [("a", 7e9, 1e12), ("b", 70e9, 1.4e12)], CHINCHILLA))
    assert "2 models against the compute-optimal frontier of chinchilla" in texts
    assert {"a", "b", "20 tokens per parameter", "parameters N", "training tokens D"} <= set(texts)


def test_isoflop_with_many_budgets_has_a_colour_bar_and_says_its_budgets(tmp_path):
    groups, minima = [], []
    for k in range(32):  # 32 budgets from 1e18 to 10^3.1 times that
        C = 1e18 * 10 ** (k / 10)
        n_opt, _ = CHINCHILLA.optimal(C)
        ns = [n_opt * f for f in (0.25, 0.5, 1, 2, 4)]
        ls = [float(CHINCHILLA.loss(n, C / (6 * n))) for n in ns]
        groups.append({"flops": C, "params": ns, "loss": ls})
        minima.append({"flops": C, "optimal_params": n_opt, "optimal_loss": min(ls)})
    texts = svg_texts(plots.plot_isoflop(tmp_path / "iso.svg", groups, minima, power_law=CHINCHILLA.k_a, title="IsoFLOP fit of runs.csv"))
    assert "IsoFLOP fit of runs.csv (Approach 2): 32 budgets, 1.00e18 to 1.26e21 FLOPs" in texts
    assert "compute C (FLOPs)" in texts  # the colour bar's label: colour by budget, no 32-line legend
    assert not any(t.endswith(" FLOPs") and t[:1].isdigit() for t in texts)  # no per-budget legend entries


def test_fit_title_gives_the_fitted_law(tmp_path):
    N, D, L, _ = runs()
    predicted = [CHINCHILLA.loss(n, d) for n, d in zip(N, D)]
    texts = svg_texts(plots.plot_fit(tmp_path / "fit.svg", N, D, L, predicted, CHINCHILLA, title="Fit of runs.csv"))
    assert "Fit of runs.csv" in texts and "L = 1.69 + 406.4/N^0.339 + 410.7/D^0.285" in texts
