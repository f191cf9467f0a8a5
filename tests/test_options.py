"""Options shared by several commands are declared once (llmplan.cli.options) and mean one thing."""

from __future__ import annotations

import json

import pytest
import typer

from llmplan.cli import options


@pytest.mark.parametrize("args", [
    ["serve", "--preset", "llama-3-8b", "--gpu", "h100"],
    ["memory", "--preset", "llama-2-7b"],
    ["throughput", "--preset", "llama-2-7b", "--gpu", "h100", "--gpus", "8", "--global-batch", "64"],
    ["compute", "--params", "7B", "--tokens", "2T", "--gpu", "h100"],
])
def test_every_dtype_takes_the_pytorch_spellings(cli, args):
    # serve --dtype bfloat16 was refused while memory took it: one parsing now (issue 20).
    short = cli([*args, "--dtype", "bf16", "-f", "json"])
    long = cli([*args, "--dtype", "bfloat16", "-f", "json"])
    assert short.code == 0 and long.code == 0, long.stderr
    assert json.loads(long.stdout) == json.loads(short.stdout)


def test_serve_dtype_still_refuses_an_unknown_format(cli):
    result = cli(["serve", "--preset", "llama-3-8b", "--dtype", "bf61"])
    assert result.code == 2 and "--dtype 'bf61' is not one of" in result.stderr


def test_a_group_lands_where_its_placeholder_stands_and_reaches_the_command_as_one_value():
    seen = {}
    app = typer.Typer()

    @app.command()
    @options.grouped(source=options.MODEL_SOURCE)
    def command(first: options.SeqOption = None, source: options.Flags = None, last: options.GlobalBatchOption = None) -> None:
        seen.update(first=first, source=source, last=last)

    click_command = typer.main.get_command(app)
    names = [p.opts[0] for p in click_command.params if "completion" not in p.opts[0] and p.opts[0] != "--help"]
    assert names == ["--seq", "--preset", "--hf", "--hf-config", "--safetensors", "--global-batch"]
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["--seq", "8", "-p", "llama-2-7b", "--global-batch", "4"])
    assert result.exit_code == 0, result.output
    assert seen == {"first": 8, "source": {"preset": "llama-2-7b", "hf": None, "hf_config": None, "safetensors": None}, "last": 4}
    assert seen["source"].preset == "llama-2-7b"


def test_the_shape_block_is_declared_once():
    # The 14 shape flags every model-taking command takes are one group, written out nowhere else.
    import pathlib

    cli_dir = pathlib.Path(options.__file__).parent
    for path in cli_dir.glob("*.py"):
        if path.name != "options.py":
            assert "ExpertsPerTokenOption" not in path.read_text(), path.name
