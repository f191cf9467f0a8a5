"""memory --plot, throughput --plot, layout --plot: where memory and time go, as stacked bars."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("matplotlib")

from llmplan.io import plots
from test_plots import assert_valid


@pytest.fixture
def drawn(monkeypatch):
    """The figures the commands draw, kept for inspection (and still written)."""
    figures = []
    real = plots.save

    def keep(fig, path):
        figures.append(fig)
        return real(fig, path)

    monkeypatch.setattr(plots, "save", keep)
    return figures


def _bars(ax):
    return [p for p in ax.patches if p.get_width() > 0 and p.get_height() > 0]


def test_memory_plot_stacks_the_parts_of_each_phase_under_the_gpu_line(cli, tmp_path, drawn):
    out = tmp_path / "memory.png"
    result = cli(["memory", "--preset", "llama-3.1-8b", "--train", "--seq", "4096", "--gpu", "h100", "--plot", str(out), "-f", "json"])
    assert result.code == 0, result.stderr
    assert_valid(out)
    phases = json.loads(cli(["memory", "--preset", "llama-3.1-8b", "--train", "--seq", "4096", "--phases", "-f", "json"]).stdout)
    ax = drawn[-1].axes[0]
    assert [t.get_text().replace("\n", " ") for t in ax.get_xticklabels()] == [p["phase"] for p in phases]
    # Each bar's stack adds up to the phase's total (GB), and the H100's capacity is a line.
    tops = {}
    for patch in _bars(ax):
        x = round(patch.get_x() + patch.get_width() / 2)
        tops[x] = max(tops.get(x, 0), patch.get_y() + patch.get_height())
    for i, phase in enumerate(phases):
        assert tops[i] == pytest.approx(phase["total_bytes"] / 1e9, rel=1e-9)
    capacity = json.loads(result.stdout)[0]["gpu_memory_bytes"] / 1e9
    assert any(abs(line.get_ydata()[0] - capacity) < 1e-9 for line in ax.get_lines())
    legend = [t.get_text() for t in drawn[-1].legends[0].get_texts()]
    assert "activations" in legend and "optimizer states" in legend and any(t.startswith("h100-sxm") for t in legend)
    assert "peak" in ax.get_title() or any("peak" in t.get_text() for t in ax.texts)


def test_memory_plot_for_inference_and_svg(cli, tmp_path):
    out = tmp_path / "memory.svg"
    result = cli(["memory", "--preset", "llama-3.1-8b", "--gpu", "rtx-4090", "--plot", str(out)])
    assert result.code == 0, result.stderr
    assert_valid(out)


def test_layout_plot_has_one_bar_per_layout_in_the_tables_order(cli, tmp_path, drawn):
    out = tmp_path / "layout.png"
    args = ["layout", "--preset", "llama-2-7b", "--gpu", "h100", "--gpus", "64", "--global-batch", "512", "--top", "4"]
    result = cli([*args, "--plot", str(out), "-f", "json"])
    assert result.code == 0, result.stderr
    assert_valid(out)
    rows = json.loads(result.stdout)
    ax = drawn[-1].axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    top_down = [label for _, label in sorted(zip(ax.get_yticks(), labels), reverse=True)]
    assert [int(label.split()[0][1:]) for label in top_down] == [r["rank"] for r in rows]  # rank 1 on top, as the table
    ends = {}
    for patch in _bars(ax):
        y = round(patch.get_y() + patch.get_height() / 2)
        ends[y] = max(ends.get(y, 0), patch.get_x() + patch.get_width())
    for y, row in zip(range(len(rows) - 1, -1, -1), rows):
        assert ends[y] == pytest.approx(row["step_seconds"], rel=1e-9)  # the parts add up to the step


def test_throughput_plot(cli, tmp_path, drawn):
    out = tmp_path / "step.png"
    result = cli(["throughput", "--preset", "llama-2-7b", "--gpu", "h100", "--gpus", "64", "--global-batch", "512", "--plot", str(out), "-f", "json"])
    assert result.code == 0, result.stderr
    assert_valid(out)
    legend = [t.get_text() for t in drawn[-1].legends[0].get_texts()]
    assert "compute" in legend and "dp comm" in legend


@pytest.mark.parametrize("argv", [
    ["memory", "--preset", "llama-2-7b"],
    ["throughput", "--preset", "llama-2-7b", "--gpu", "h100", "--gpus", "8", "--global-batch", "8"],
    ["layout", "--preset", "llama-2-7b", "--gpu", "h100", "--gpus", "8", "--global-batch", "8"],
])
def test_a_bad_plot_path_is_refused_before_any_work(cli, tmp_path, argv):
    result = cli([*argv, "--plot", str(tmp_path / "picture.jpg")])
    assert result.code == 2 and "must be .png or .svg" in result.stderr and result.stdout == ""


def test_without_matplotlib_the_plot_is_one_line(cli, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = cli(["memory", "--preset", "llama-2-7b", "--plot", str(tmp_path / "m.png")])
    assert result.code == 2 and result.stderr.strip().endswith("plots need matplotlib: pip install 'llmplan[plot]'")
