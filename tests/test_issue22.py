"""Issue 22: a plan that agrees with itself and with practice, readable at any size; examples that run as typed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO

LLMPLAN = [sys.executable, "-m", "llmplan"]


def test_gpu_names_hold_no_comma():
    # `llmplan gpus -f csv | cut -d, -f...` must not split a name (B200 and MI250X once held commas).
    from llmplan.presets import catalog

    for gpu in catalog().all("gpus"):
        assert "," not in gpu.name, gpu.id


def test_plan_at_80_columns_shows_every_value(cli, monkeypatch):
    # The largest plan of the issue: every label has its value beside it, nothing is left out, the
    # layout uses tp 8 (heads in multiples of 8, 8 KV heads), and no line is wider than 80.
    monkeypatch.setenv("COLUMNS", "80")
    result = cli(["plan", "--gpu", "h100", "--gpus", "16384", "--days", "54", "-f", "table"])
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "left out" not in result.stdout
    import re

    for label in ("parameters (N)", "layout", "step time", "MFU (6ND)", "wall time", "energy, kWh", "published, nearest scale"):
        (line,) = [line for line in lines if re.search(r"\s" + re.escape(label) + r"\s{2,}\S", line)]
        assert len(line.split(label, 1)[1].strip()) > 0, label  # a value beside the label
    assert "tp 8," in result.stdout
    assert result.stdout.count("MFU") == 2  # the title's and the one row's: one MFU


def test_explain_is_readable_at_80_columns(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    result = cli(["plan", "--gpu", "h100", "--gpus", "256", "--days", "30", "--explain", "-f", "table"])
    assert result.code == 0
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    assert " from " in result.stdout.splitlines()[2] and "left out" not in result.stdout
    assert "compute-optimal" in result.stdout  # the column's text is there, wrapped inside its cell


def test_a_one_row_vertical_table_keeps_its_value_column():
    from llmplan.io.render import to_table

    row = {f"a rather long quantity label number {i}": "a long value " * 6 for i in range(3)}
    text = to_table([row], width=60)
    assert max(len(line) for line in text.splitlines()) <= 60
    assert text.count("a long value") >= 3  # every value shown, wrapped


def test_notes_come_after_the_table_once_wrapped_at_words(monkeypatch):
    from llmplan.cli import common

    monkeypatch.setenv("COLUMNS", "40")
    out = []
    monkeypatch.setattr(common.sys, "stderr", type("E", (), {"write": lambda self, t: out.append(t), "flush": lambda self: None,
                                                            "isatty": lambda self: False})())
    common.note("a note that is long enough to wrap at forty columns on word boundaries")
    common.note("a note that is long enough to wrap at forty columns on word boundaries")  # said once
    assert out == []  # held for after the table
    common.flush_notes()
    text = "".join(out)
    lines = text.splitlines()
    assert len(lines) >= 2 and all(len(line) <= 40 for line in lines)
    assert lines[0].startswith("note: a note") and lines[1].startswith("      ")  # continuation under the message
    words = " ".join(line.strip() for line in lines).replace("note: ", "").split()
    assert words == "a note that is long enough to wrap at forty columns on word boundaries".split()


def test_notes_follow_the_table_in_the_output(tmp_path):
    # stdout and stderr to one file: the table first, then the notes (one place for every command).
    out = tmp_path / "both.txt"
    with out.open("w") as handle:
        subprocess.run([*LLMPLAN, "compute", "--params", "7B", "--tokens", "2T", "--gpu", "a100", "-f", "table"],
                       stdout=handle, stderr=subprocess.STDOUT, cwd=REPO, check=True, env={**os.environ, "COLUMNS": "100"})
    text = out.read_text()
    assert text.index("GPU-hours") < text.index("note: ")
    assert "(key 'extrapolated')" not in text


def test_budget_from_stdin_streams_line_by_line():
    # A value written to the pipe comes back as a row before stdin is closed.
    proc = subprocess.Popen([*LLMPLAN, "optimal", "--budget", "-", "-f", "tsv"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, cwd=REPO, text=True, bufsize=1)
    try:
        proc.stdin.write("1e21\n")
        proc.stdin.flush()
        header = proc.stdout.readline()
        row = proc.stdout.readline()
        assert header.startswith("law\t") and row.startswith("epoch-2024\t1e+21")
        assert proc.poll() is None  # still reading
        proc.stdin.write("1e22\n")
        proc.stdin.close()
        assert proc.stdout.readline().startswith("epoch-2024\t1e+22")
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a pseudo-terminal")
def test_typed_budgets_end_on_one_ctrl_d():
    import pty

    main, child = pty.openpty()
    proc = subprocess.Popen([*LLMPLAN, "optimal", "--budget", "-", "-f", "tsv"], stdin=child, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, cwd=REPO, text=True)
    os.close(child)
    try:
        os.write(main, b"1e21\n")
        assert proc.stdout.readline().startswith("law\t")
        assert proc.stdout.readline().startswith("epoch-2024\t1e+21")  # the typed line's row, at once
        os.write(main, b"\x04")  # one Ctrl-D at the start of a line ends the input
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
        os.close(main)


def test_arch_targets_are_shapes_of_todays_models(cli):
    seven = json.loads(cli(["arch", "--target", "7B", "-f", "json"]).stdout)[0]
    assert (seven["layers"], seven["d_model"], seven["heads"], seven["kv_heads"], seven["ffn"]) == (32, 4096, 32, 8, 14336)
    seventy = json.loads(cli(["arch", "--target", "70B", "-f", "json"]).stdout)
    assert (seventy[0]["layers"], seventy[0]["d_model"], seventy[0]["heads"], seventy[0]["kv_heads"], seventy[0]["ffn"]) == (80, 8192, 64, 8, 28672)
    assert all(r["heads"] % 8 == 0 and r["kv_heads"] == 8 for r in seventy)


def test_plan_kv_heads_override(cli):
    row = json.loads(cli(["plan", "--gpu", "h100", "--gpus", "256", "--days", "30", "--mfu", "0.4", "--kv-heads", "16", "-f", "json"]).stdout)[0]
    assert row["shape_kv_heads"] == 16 and row["shape_heads"] % 16 == 0


def test_readme_quick_answers_run_as_typed(tmp_path):
    # The commands of the README's first table run as printed (exit 0), and a throughput layout it shows fits.
    import re

    text = (REPO / "README.md").read_text()
    section = text.split("## What it answers", 1)[1].split("\n## ", 1)[0]
    # (a checkpoint of your own and its config.json are not in the repository)
    commands = [c for c in re.findall(r"`(llmplan [^`]+)`", section) if "./checkpoint" not in c and "config.json" not in c]
    assert any(c.startswith("llmplan fit docs/examples/runs.csv") for c in commands)
    (tmp_path / "docs").symlink_to(REPO / "docs")
    (tmp_path / "tests").symlink_to(REPO / "tests")  # data mix reads tests/data/mix_runs.csv
    for command in commands:
        if "--bootstrap" in command:
            command = command.replace("--bootstrap 1000", "--bootstrap 20")  # the same path, quicker
        args = command.split()[1:]
        result = subprocess.run([*LLMPLAN, *args, "-f", "json"], capture_output=True, text=True, cwd=tmp_path,
                                env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=600)
        assert result.returncode == 0, f"{command}: {result.stderr}"
        if args[0] in ("throughput", "layout"):
            assert all(r["fits"] for r in json.loads(result.stdout)), command


def test_losses_carry_their_unit_dataset_and_tokenizer(cli):
    # Every law that predicts a loss says in what and on what data (presets/laws.toml); rows of laws
    # measured on different data come with a note.
    from llmplan.presets import catalog
    from llmplan.scaling.laws import load_law

    for preset in catalog().all("laws"):
        if load_law(preset.id).predicts_loss:
            assert preset.get("loss_unit") == "nats per token" and preset.get("dataset") and preset.get("tokenizer"), preset.id
    result = cli(["loss", "--params", "70B", "--tokens", "1.4T", "--law", "all", "-f", "json"])
    assert result.code == 0 and "different data and tokenizers" in result.stderr and "WebText2" in result.stderr
    one = cli(["loss", "--params", "70B", "--tokens", "1.4T", "-f", "json"])
    assert "different data" not in one.stderr


def test_serve_says_which_engine_its_figures_are_for(cli):
    # Item 8, once engines are modelled (issue 23): the note names the engine and the roofline bound beside it.
    import json

    result = cli(["serve", "--preset", "llama-3-8b", "--gpu", "h100", "--batch", "1", "-f", "json"])
    row = json.loads(result.stdout)[0]
    assert result.code == 0 and row["engine"] == "vllm"
    assert "vLLM" in result.stderr and "the roofline allows" in result.stderr


def test_compare_explains_only_the_columns_it_shows_and_names_moe(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    narrow = cli(["compare", "-f", "table"])
    assert "implied_mfu" in narrow.stdout.split("left out at 80 columns:")[1]  # left out ...
    assert "MFU (impl.) =" not in narrow.stdout + narrow.stderr  # ... so not explained
    assert "mixture" in narrow.stderr and "deepseek-v3 37B of 671B" in narrow.stderr
    wide = cli(["compare", "-f", "table", "--wide"])
    assert "MFU (impl.) =" in wide.stdout
    machine = cli(["compare", "-f", "json"])
    assert "MFU (impl.) =" in machine.stderr  # every key is in the output, so every explanation is a note


def test_a_shape_far_from_the_laws_n_is_a_warning(cli):
    # Found by review: an hour-long budget on one GPU buys a 1.4M model whose nearest conventional shape
    # (6 x 128) has 9.8M parameters; the plan said nothing. Within 10% (every plan from 1B up) it stays quiet.
    import json

    small = cli(["plan", "--gpu", "h100", "--gpus", "1", "--hours", "0.01", "-f", "json"])
    row = json.loads(small.stdout)[0]
    assert small.code == 0 and row["shape_params"] > 1.1 * row["params"]
    assert "nearest conventional shape" in small.stderr
    usual = cli(["plan", "--gpu", "h100", "--gpus", "256", "--days", "30", "-f", "json"])
    assert "nearest conventional shape" not in usual.stderr
