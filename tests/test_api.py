"""The Python API (llmplan.api): each function returns exactly the rows its command prints with -f json,
and raises LlmplanError with the command's one-line message."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import llmplan
from llmplan.errors import InputError, LlmplanError
from conftest import DATA, REPO

CASES = [
    ("plan", (), {"gpu": "h100", "gpus": 256, "days": 30}, ["plan", "--gpu", "h100", "--gpus", "256", "--days", "30"]),
    ("optimal", (), {"budget": "3000pfd", "law": "chinchilla"}, ["optimal", "--budget", "3000pfd", "--law", "chinchilla"]),
    ("loss", (), {"params": "70B", "tokens": "1.4T"}, ["loss", "--params", "70B", "--tokens", "1.4T"]),
    ("compute", (), {"params": 7e9, "tokens": "2T", "gpu": "h100", "gpus": 64}, ["compute", "--params", "7e9", "--tokens", "2T", "--gpu", "h100", "--gpus", "64"]),
    ("compare", (), {}, ["compare"]),
    ("fit", (str(DATA / "fit_runs_exact.csv"),), {}, ["fit", str(DATA / "fit_runs_exact.csv")]),
    ("arch", (), {"preset": ["llama-3.1-8b", "llama-2-7b"]}, ["arch", "--preset", "llama-3.1-8b", "--preset", "llama-2-7b"]),
    ("memory", (), {"preset": "llama-3.1-8b", "train": True, "gpu": "h100"}, ["memory", "--preset", "llama-3.1-8b", "--train", "--gpu", "h100"]),
    ("throughput", (), {"preset": "llama-2-7b", "gpu": "h100", "gpus": 64, "global_batch": 512},
     ["throughput", "--preset", "llama-2-7b", "--gpu", "h100", "--gpus", "64", "--global-batch", "512"]),
    ("layout", (), {"preset": "llama-2-7b", "gpu": "h100", "gpus": 64, "global_batch": 512},
     ["layout", "--preset", "llama-2-7b", "--gpu", "h100", "--gpus", "64", "--global-batch", "512"]),
    ("serve", (), {"preset": "llama-3.1-8b", "gpu": "h100"}, ["serve", "--preset", "llama-3.1-8b", "--gpu", "h100"]),
    ("dtypes", (), {}, ["dtypes"]),
    ("gpus", (), {}, ["gpus"]),
]


@pytest.mark.parametrize("name, args, options, argv", CASES, ids=[c[0] for c in CASES])
def test_each_function_returns_its_commands_json_rows(cli, name, args, options, argv):
    command = cli([*argv, "-f", "json"])
    assert command.code == 0, command.stderr
    rows = getattr(llmplan, name)(*args, **options)
    assert rows == json.loads(command.stdout)
    assert rows and all(isinstance(r, dict) for r in rows)
    assert rows.notes == [line for line in command.stderr.splitlines() if line.strip()]


def test_presets_and_the_generic_run(cli):
    listed = llmplan.api.presets("list", kind="models")
    assert listed == json.loads(cli(["presets", "list", "--kind", "models", "-f", "json"]).stdout)
    assert llmplan.api.presets("show", "llama-3.1-8b")[0]["model"] == "llama-3.1-8b"
    assert llmplan.run("memory", preset="llama-2-7b") == json.loads(cli(["memory", "--preset", "llama-2-7b", "-f", "json"]).stdout)


def test_a_list_goes_where_the_command_reads_stdin(cli):
    rows = llmplan.optimal(budget=[1e21, 1e22, 1e23])
    assert rows == json.loads(cli(["optimal", "--budget", "-", "-f", "json"], stdin="1e21\n1e22\n1e23\n").stdout)
    assert len(rows) == 3


def test_optimal_takes_a_list_of_sizes_and_hardware_time_as_numbers(cli):
    rows = llmplan.optimal(params=["7B", 13e9])
    assert rows == json.loads(cli(["optimal", "--params", "-", "-f", "json"], stdin="7B\n13e9\n").stdout)
    timed = llmplan.optimal(gpu="h100", gpus=256, days=30, mfu=0.4)
    assert timed == json.loads(cli(["optimal", "--gpu", "h100", "--gpus", "256", "--days", "30", "--mfu", "0.4", "-f", "json"]).stdout)
    assert timed.detail.hardware.gpus == 256


def test_data_dispatches_to_its_subcommands():
    from llmplan.commands import data

    assert data.data("filter", pool="15T", budget=1e24) == data.filter(pool="15T", budget="1e24")
    assert data.filter(pool="15T", budget="1e24", keep=[0.014, 0.2]) == data.filter(pool="15T", budget="1e24", keep="0.014,0.2")
    with pytest.raises(InputError, match="has no option 'pools'"):
        data.filter(pools="15T")
    with pytest.raises(InputError, match="Missing argument 'RUNS'"):
        llmplan.data("mix")


def test_loss_takes_a_list_of_pairs(cli):
    rows = llmplan.loss(params=["70B 1.4T", (280e9, "300B")])
    assert rows == json.loads(cli(["loss", "--params", "-", "-f", "json"], stdin="70B 1.4T\n280B 300B\n").stdout)
    with pytest.raises(InputError, match="drop --tokens"):
        llmplan.loss(params=["70B 1.4T"], tokens="1T")


def test_fit_takes_records():
    import csv

    with open(DATA / "fit_runs_exact.csv") as handle:
        records = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]
    assert llmplan.fit(records) == llmplan.fit(str(DATA / "fit_runs_exact.csv"))


def test_switches_both_ways(cli):
    tied = llmplan.arch(layers=2, d_model=64, heads=4, vocab=100, tied_embeddings=True)
    untied = llmplan.arch(layers=2, d_model=64, heads=4, vocab=100, tied_embeddings=False)
    assert untied[0]["params"] - tied[0]["params"] == 100 * 64


@pytest.mark.parametrize("call, argv", [
    (lambda: llmplan.memory(preset="nope"), ["memory", "--preset", "nope"]),
    (lambda: llmplan.optimal(budget="lots"), ["optimal", "--budget", "lots"]),
    (lambda: llmplan.plan(gpu="h100"), ["plan", "--gpu", "h100"]),
])
def test_errors_raise_one_type_with_the_commands_line(cli, call, argv):
    command = cli(argv)
    assert command.code == 2
    with pytest.raises(LlmplanError) as raised:
        call()
    assert f"llmplan: error: {raised.value}" == command.stderr.strip().splitlines()[-1]


def test_bad_keywords_and_values_are_input_errors():
    with pytest.raises(InputError, match="has no option 'presett'"):
        llmplan.memory(presett="llama-2-7b")
    with pytest.raises(InputError, match="--gpus takes a whole number"):
        llmplan.throughput(preset="llama-2-7b", gpu="h100", gpus="many", global_batch=8)
    with pytest.raises(InputError, match="format"):
        llmplan.memory(preset="llama-2-7b", format="table")


def test_dtypes_is_both_the_module_and_the_command():
    assert llmplan.dtypes.canonical("bfloat16", ("bf16",)) == "bf16"
    assert [r["dtype"] for r in llmplan.dtypes()][:2] == ["fp32", "tf32"] or llmplan.dtypes()


def test_a_function_prints_nothing_and_needs_no_command_line(capsys):
    # The functions are the commands' own (llmplan.commands), not the command line run in-process: they
    # write nothing to the process's streams (notes come back in .notes) and load neither typer nor click.
    assert llmplan.memory(preset="llama-2-7b", gpu="h100")[0]["fits"]
    with pytest.raises(LlmplanError):
        llmplan.memory(preset="nope")
    assert capsys.readouterr() == ("", "")
    code = ("import sys, llmplan; llmplan.memory(preset='llama-2-7b', gpu='h100'); llmplan.optimal(budget='1e22'); "
            "print([m for m in ('typer', 'click', 'rich', 'llmplan.cli') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True).stdout
    assert out.strip() == "[]"


def test_import_llmplan_is_light():
    code = ("import sys, llmplan; heavy = [m for m in ('typer', 'click', 'rich', 'numpy', 'scipy', 'llmplan.api', 'llmplan.cli') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True).stdout
    assert out.strip() == "[]"


def test_data_runs_the_data_subcommands(cli):
    """llmplan.data(action, ...) is `llmplan data ACTION ... -f json`, rows and notes alike."""
    command = cli(["data", "filter", "--pool", "15T", "--budget", "1e24", "-f", "json"])
    assert command.code == 0, command.stderr
    rows = llmplan.data("filter", pool="15T", budget="1e24")
    assert rows == json.loads(command.stdout) and rows[0]["keep"] == 0.014
    assert rows.notes == [line for line in command.stderr.splitlines() if line.strip()]
    mix = str(DATA / "mix_runs.csv")
    assert llmplan.data("mix", mix, weights="0.3,0.7") == json.loads(cli(["data", "mix", mix, "--weights", "0.3,0.7", "-f", "json"]).stdout)
    assert llmplan.data("domain", domain_tokens="50B", budget=1e23)[0]["budget_flops"] == 1e23
    with pytest.raises(InputError, match="filter, domain and mix"):
        llmplan.data("nope")
    with pytest.raises(InputError, match="below the 1.0M"):
        llmplan.data("filter", pool="15T", budget="1")
    assert "data" in dir(llmplan) and llmplan.data is llmplan.api.data


def _converted() -> list[str]:
    """The commands that are functions of llmplan.commands (the command line calls them)."""
    import importlib.util

    from llmplan.cli import COMMANDS

    return [name for name in COMMANDS if importlib.util.find_spec(f"llmplan.commands.{name}") is not None]


# Options only a terminal has: the format of the output, --check's exit code.
TERMINAL_ONLY = {"fmt", "check", "help", "wide", "quiet"}
# Keywords only a function has: fit's progress callback (the command line passes its terminal bar).
FUNCTION_ONLY = {"progress"}


def disagreements(name: str, click_command, function) -> list[str]:
    """Where a command's options and its function's keywords differ in name or default."""
    import inspect

    from llmplan.model.source import SHAPE_FLAGS

    found = []
    signature = inspect.signature(function).parameters
    takes_model = any(p.kind == inspect.Parameter.VAR_KEYWORD for p in signature.values())
    model_names = set(SHAPE_FLAGS) | {"preset", "hf", "hf_config", "safetensors"}
    for param in click_command.params:
        if param.name in TERMINAL_ONLY or param.name in ("install_completion", "show_completion"):
            continue
        if param.name in model_names and takes_model and param.name not in signature:
            continue
        if param.name not in signature:
            found.append(f"llmplan {name} --{param.name}: not a keyword of llmplan.{name}")
            continue
        default = signature[param.name].default
        expected = param.default if not (param.multiple and param.default in ((), None)) else None
        if default != expected:
            found.append(f"llmplan {name} --{param.name}: the command's default {expected!r}, the function's {default!r}")
    option_names = {p.name for p in click_command.params} | {  # an option may also go by its long name
        o[2:].replace("-", "_") for p in click_command.params for o in getattr(p, "opts", ()) if o.startswith("--")}
    extra = {n for n, p in signature.items() if p.kind != inspect.Parameter.VAR_KEYWORD} - option_names - FUNCTION_ONLY
    if extra:
        found.append(f"llmplan.{name} takes {sorted(extra)}, which `llmplan {name}` has no option for")
    return found


# A group's subcommands are functions of its module, by their names (llmplan.commands.presets.list, .show).
SUBCOMMANDS = {"presets": ("list", "show"), "data": ("filter", "domain", "mix")}


def _functions() -> list[tuple[str, str | None]]:
    """(command, subcommand or None) for every command function to check against its command."""
    return [(name, sub) for name in _converted() for sub in SUBCOMMANDS.get(name, (None,))]


@pytest.mark.parametrize("name, sub", _functions(), ids=[" ".join(filter(None, f)) for f in _functions()])
def test_the_function_takes_the_commands_options_with_the_same_defaults(name, sub):
    # The command line and the function declare their options apart (typer needs its own signature):
    # the names and defaults must agree, or llmplan.NAME(...) would differ from `llmplan NAME` unset.
    import importlib

    import click
    import typer

    from llmplan.cli import COMMANDS

    click_command = typer.main.get_command(importlib.import_module(COMMANDS[name]).app)
    module = importlib.import_module(f"llmplan.commands.{name}")
    if sub is not None:
        click_command = click_command.get_command(click.Context(click_command), sub)
    function = getattr(module, sub or name)
    assert disagreements(" ".join(filter(None, (name, sub))), click_command, function) == []


def test_a_group_has_a_function_for_each_subcommand():
    import importlib

    import click
    import typer

    from llmplan.cli import COMMANDS

    for name, subs in SUBCOMMANDS.items():
        group = typer.main.get_command(importlib.import_module(COMMANDS[name]).app)
        assert sorted(group.list_commands(click.Context(group))) == sorted(subs)


def test_presets_dispatches_to_its_subcommands():
    from llmplan.commands import presets

    assert presets.presets("list", kind="laws") == presets.list(kind="laws")
    assert presets.presets("show", "chinchilla", kind="laws") == presets.show("chinchilla", kind="laws")
    with pytest.raises(InputError, match="list and show"):
        presets.presets("nope")
    with pytest.raises(InputError, match="has no option 'kinds'"):
        presets.list(kinds="laws")
    with pytest.raises(InputError, match="Missing argument 'ID'"):
        llmplan.api.presets("show")


def test_the_default_check_can_fail():
    import typer

    from llmplan.cli import memory as command

    def memory(params=None, *, batch=2, colour=None, **model_options):
        pass

    found = disagreements("memory", typer.main.get_command(command.app), memory)
    assert any("--batch: the command's default 1, the function's 2" in f for f in found)
    assert any("--train: not a keyword" in f for f in found)
    assert any("['colour']" in f for f in found)


def test_a_fit_that_does_not_converge_keeps_its_rows_whole_and_its_notes(monkeypatch):
    # Found by review: the rows a failed fit carries (error.rows) skipped the decorator that makes counts
    # whole, so -f json printed "params": 70000000.0; what the fit said before failing goes with the error.
    import llmplan.scaling.fit.parametric as core
    from llmplan.errors import WorkError

    real = core.fit_parametric

    def never_converges(*args, **kwargs):
        result = real(*args, **kwargs)
        result.converged = False
        return result

    monkeypatch.setattr(core, "fit_parametric", never_converges)
    with pytest.raises(WorkError) as raised:
        llmplan.fit(str(DATA / "fit_runs_noisy.csv"), residuals=True)
    rows = raised.value.rows
    assert rows and all(type(r["params"]) is int and type(r["tokens"]) is int for r in rows)
    assert rows.whole
