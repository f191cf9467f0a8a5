"""The command-line contract of docs/architecture.md: exit codes, one-line errors, stdout vs stderr, start-up."""

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO


def test_unknown_command_suggests(cli):
    result = cli(["dtype"])
    assert result.code == 2
    assert result.stdout == ""
    assert result.stderr == "llmplan: error: no command 'dtype'; did you mean 'dtypes'?\n"


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["dtypes", "--bogus"], "--bogus"),
        (["dtypes", "-f", "xml"], "--format 'xml' is not one of table, json, jsonl, csv, tsv"),
        (["dtypes", "--params", "7X"], "'7X' is not a parameter count"),
        (["presets", "show", "llama-2-7"], "unknown preset 'llama-2-7'; did you mean"),
        (["presets", "list", "--kind", "cars"], "--kind 'cars' is not one of models, laws, gpus"),
    ],
)
def test_bad_input_is_one_line_exit_2(cli, args, fragment):
    result = cli(args)
    assert result.code == 2, result
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_version(cli):
    from llmplan import __version__

    result = cli(["--version"])
    assert result.code == 0 and result.stdout == f"llmplan {__version__}\n"


def _subprocess(args, **env):
    return subprocess.run([sys.executable, "-m", "llmplan", *args], capture_output=True, text=True, cwd=REPO, env={**os.environ, **env}, timeout=60)


def test_pipe_defaults_to_tsv_and_env_format():
    piped = _subprocess(["dtypes"])
    assert piped.returncode == 0
    assert piped.stdout.splitlines()[0].split("\t")[:3] == ["dtype", "bits", "bytes_per_value"]
    as_json = _subprocess(["dtypes"], LLMPLAN_FORMAT="json")
    assert isinstance(json.loads(as_json.stdout), list)


def test_no_colour_when_asked():
    result = _subprocess(["dtypes", "-f", "table"], NO_COLOR="1")
    assert result.returncode == 0 and "\x1b[" not in result.stdout


def test_import_cli_loads_no_numpy_or_scipy():
    code = "import sys, llmplan.cli; print(sorted(m for m in ('numpy', 'scipy', 'pandas', 'matplotlib') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


def test_cheap_command_loads_no_numpy():
    code = "import sys; sys.argv=['llmplan','dtypes','-f','json']\nimport io, contextlib\nfrom llmplan.cli import main\nbuf=io.StringIO()\ntry:\n  with contextlib.redirect_stdout(buf): main()\nexcept SystemExit: pass\nprint('numpy' in sys.modules, 'scipy' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.stdout.strip().splitlines()[-1] == "False False", result.stdout + result.stderr


def test_python_dash_m_and_help_shows_examples():
    result = _subprocess(["--help"])
    assert result.returncode == 0 and "Examples" in result.stdout
