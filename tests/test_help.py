"""Every command and every option explains itself: help text, and examples in each command's help."""

import pytest
import typer

from llmplan.cli import app


def _commands():
    group = typer.main.get_command(app)
    found = {}
    for name in group.list_commands(None):
        command = group.get_command(None, name)
        for sub_name, sub in (getattr(command, "commands", None) or {}).items():
            found[f"{name} {sub_name}"] = sub
        if not getattr(command, "commands", None):
            found[name] = command
    return found


COMMANDS = _commands()


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_help_has_examples(name):
    command = COMMANDS[name]
    text = command.help or ""
    assert text.strip(), f"llmplan {name} has no help"
    assert "Examples:" in text and f"llmplan {name}" in text.split("Examples:", 1)[1], f"llmplan {name} --help shows no example of itself"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_has_help(name):
    for param in COMMANDS[name].params:
        if param.param_type_name == "option" and param.name != "help":
            assert (param.help or "").strip(), f"llmplan {name} {param.opts[0]} has no help text"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_runs(cli, name):
    result = cli([*name.split(), "--help"])
    assert result.code == 0 and "Examples" in result.stdout
