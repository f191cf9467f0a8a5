"""The command line: parse, call the core, hand rows to llmplan.io.render.

Commands load lazily: `llmplan dtypes` imports only what `dtypes` needs, so a shell loop pays for
one command's imports, never for numpy or scipy unless the command computes with them.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
from typing import Any, Optional

import typer
from typer.core import TyperGroup

from llmplan import __version__
from llmplan.errors import InputError, LlmplanError

# name -> module holding `app` (a typer.Typer with the command). Order is the help's order.
COMMANDS: dict[str, str] = {
    "plan": "llmplan.cli.plan",
    "optimal": "llmplan.cli.optimal",
    "loss": "llmplan.cli.loss",
    "compute": "llmplan.cli.compute",
    "compare": "llmplan.cli.compare",
    "fit": "llmplan.cli.fit",
    "arch": "llmplan.cli.arch",
    "memory": "llmplan.cli.memory",
    "throughput": "llmplan.cli.throughput",
    "layout": "llmplan.cli.layout",
    "serve": "llmplan.cli.serve",
    "data": "llmplan.cli.data",
    "dtypes": "llmplan.cli.dtypes",
    "gpus": "llmplan.cli.gpus",
    "presets": "llmplan.cli.presets",
}


def _drop_completion_options(command: Any) -> None:
    """Shell completion is installed from the top level (`llmplan --install-completion`) only."""
    command.params = [p for p in command.params if p.name not in ("install_completion", "show_completion")]
    for sub in getattr(command, "commands", {}).values():
        _drop_completion_options(sub)


def _plain_help(command: Any) -> None:
    """Help through click's plain formatter: typer's rich panels import rich's markup and markdown
    (about half of `--help`'s time) for the same text. Indented paragraphs (the examples) keep
    their lines as written (click's \\b marker)."""
    command.rich_markup_mode = None
    if command.help:
        command.help = _keep_examples(command.help)
    for sub in getattr(command, "commands", {}).values():
        _plain_help(sub)


def _keep_examples(text: str) -> str:
    paragraphs = text.split("\n\n")
    return "\n\n".join("\b\n" + p if p.startswith((" ", "\t")) and not p.startswith("\b") else p for p in paragraphs)


# The first line of a help text in a module's source: help="""First line... or help="First line".
_TRIPLE = re.compile(r'help\s*=\s*(?:"""|\'\'\')\s*([^\n]*)')
_SINGLE = re.compile(r'help\s*=\s*"([^"\n]*)"')


def _summary(module_name: str) -> str:
    """The first line of a command's help, read from its module's source (no import); else imported.
    A group (typer.Typer(help=...)) is summarised by its own help, a command by its command's."""
    spec = importlib.util.find_spec(module_name)
    try:
        with open(spec.origin, encoding="utf-8") as handle:  # type: ignore[union-attr, arg-type]
            source = handle.read()
        typer_call = source.find("Typer(")
        command_call = source.find(".command(")
        start = typer_call if typer_call >= 0 and "help" in source[typer_call : source.find(")", typer_call)] else command_call
        if start >= 0:
            found = [m for m in (_TRIPLE.search(source, start), _SINGLE.search(source, start)) if m]
            if found:
                first = min(found, key=lambda m: m.start()).group(1)
                first = first.split('"""')[0].split("\'\'\'")[0].strip()
                if first:
                    return first
    except (OSError, TypeError, AttributeError):
        pass
    command = typer.main.get_command(importlib.import_module(module_name).app)
    return command.get_short_help_str(limit=80)


_BUILT: dict[str, Any] = {}  # command name -> its click command, built once per process


class LazyGroup(TyperGroup):
    """A group that imports a command's module only when that command runs (or help lists it)."""

    def list_commands(self, ctx: Any) -> list[str]:
        return [name for name, module in COMMANDS.items() if importlib.util.find_spec(module) is not None]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        built = _BUILT.get(cmd_name)
        if built is not None:  # resolve_command asks twice: typer builds a command's options once
            return built
        module_name = COMMANDS.get(cmd_name)
        if module_name is None or importlib.util.find_spec(module_name) is None:
            return None
        from llmplan import presets
        from llmplan.io import parse_cache

        presets.PARSE_CACHE = parse_cache  # the command line keeps parsed presets between runs (start-up)
        module = importlib.import_module(module_name)
        command = typer.main.get_command(module.app)
        command.name = cmd_name
        _drop_completion_options(command)
        _plain_help(command)
        from llmplan.cli.common import add_shared_options

        add_shared_options(command)  # --wide, --quiet/-q
        _BUILT[cmd_name] = command
        return command

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """The command list of `llmplan --help`, from each module's source: no command is imported."""
        rows = [(name, _summary(module)) for name, module in COMMANDS.items() if importlib.util.find_spec(module) is not None]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        name = args[0] if args else ""
        if name and self.get_command(ctx, name) is None and not name.startswith("-"):
            import difflib

            from llmplan.errors import InputError

            close = difflib.get_close_matches(name, self.list_commands(ctx), n=1)
            hint = f"did you mean '{close[0]}'?" if close else "see 'llmplan --help'"
            raise InputError(f"no command {name!r}; {hint}")
        return super().resolve_command(ctx, args)


HELP = """Plan LLM pre-training: compute-optimal size and tokens, loss, compute, memory, cost.

Examples:

  llmplan plan --gpu h100 --gpus 256 --days 30

  llmplan optimal --budget 3000pfd

  llmplan compare

  llmplan memory --params 7B --dtype bf16

  llmplan layout --preset llama-2-70b --gpu h100 --gpus 64 --global-batch 512

  llmplan serve --preset llama-3-8b --gpu h100 --batch 1:128

  llmplan dtypes --params 7B

Every command takes --format table|json|jsonl|csv|tsv (default: table on a terminal, tsv in a pipe),
--wide (tables: every column) and --quiet/-q (errors only on stderr); -h is --help.
"""

app = typer.Typer(cls=LazyGroup, help=HELP, no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]}, add_completion=True, pretty_exceptions_enable=False, rich_markup_mode=None)


def _version(value: bool) -> None:
    if value:
        print(f"llmplan {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Optional[bool] = typer.Option(None, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Plan LLM pre-training."""


# The one error line is cut to this many characters (a quoted input is already cut to ~100).
MAX_ERROR_CHARS = 600


def _error(message: str) -> None:
    line = " ".join(message.split()) or "an error without a message"
    if len(line) > MAX_ERROR_CHARS:
        line = line[: MAX_ERROR_CHARS - 3] + "..."
    try:  # a closed stderr loses the message, not the exit code
        sys.stderr.write(f"llmplan: error: {line}\n")
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError, UnicodeError):
        pass


def _check_home() -> None:
    """--install-completion writes under HOME (a script and a line in the shell's start-up file):
    HOME must be set and be a folder this user can write, or it is bad input, said in one line."""
    home = os.environ.get("HOME", "")
    if not home.strip():
        raise InputError("--install-completion writes under HOME, which is not set; set HOME to your home folder")
    if not os.path.isdir(home):
        raise InputError(f"--install-completion: HOME {home!r} is not a folder; set HOME to your home folder")
    if not os.access(home, os.W_OK):
        raise InputError(f"--install-completion: HOME {home!r} is not writable; set HOME to a folder you can write")


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the command, map errors to one line on stderr and an exit code."""
    from llmplan.cli.streams import guarded

    with guarded():
        code = _run(list(argv) if argv is not None else sys.argv[1:])
    sys.exit(code)


def _run(args: list[str]) -> int:
    from click import exceptions as click_exceptions

    from llmplan.cli.streams import ReaderGone, silence_stdout

    command = typer.main.get_command(app)
    _plain_help(command)
    debug = bool(os.environ.get("LLMPLAN_DEBUG"))
    if not args:  # bare `llmplan`: the help, and success
        args = ["--help"]
    code = 0
    from llmplan.cli.common import discard_notes

    discard_notes()  # a run starts with no notes held (an earlier in-process call may have left some)
    try:
        try:
            if any("\x00" in arg for arg in args):
                raise InputError("an argument contains a NUL byte; remove it")
            if "--install-completion" in args:
                _check_home()
            result = command.main(args=args, prog_name="llmplan", standalone_mode=False)
            code = result if isinstance(result, int) else 0
        finally:
            sys.stdout.flush()  # inside the handlers: a full or closed stdout is reported, not ignored
            from llmplan.cli.common import flush_notes

            flush_notes()  # notes held for after the table, before any error line
    except ReaderGone:
        # The reader went away (`llmplan ... | head`, `| true`): stop quietly, with success.
        silence_stdout()
        code = 0
    except LlmplanError as error:
        if debug:
            raise
        from llmplan.cli.common import flush_notes, say

        say(error)  # what the command said before it failed (llmplan.commands.result), then the error line
        flush_notes()
        _error(str(error).splitlines()[0] if str(error) else type(error).__name__)
        code = error.exit_code
    except click_exceptions.NoArgsIsHelpError:  # a group without its subcommand: its help was shown
        code = 0
    except click_exceptions.UsageError as error:
        if debug:
            raise
        where = f" (see 'llmplan {error.ctx.command_path.partition(' ')[2]} --help')".replace("  ", " ") if error.ctx else ""
        where = where.replace("'llmplan  --help'", "'llmplan --help'")
        _error(" ".join(error.format_message().split()) + where)
        code = 2
    except click_exceptions.ClickException as error:
        # Click's other errors (an unreadable file argument, say) are bad input too: exit 2.
        _error(" ".join(error.format_message().split()))
        code = 2
    except (typer.Abort, click_exceptions.Abort, KeyboardInterrupt):
        code = 130
    except BrokenPipeError:  # a write that bypassed the guarded stdout
        silence_stdout()
        code = 0
    except RecursionError:
        if debug:
            raise
        _error("the input is nested too deeply to read; give a flat file")
        code = 2
    except ValueError as error:
        if debug:
            raise
        if "integer string conversion" not in str(error):  # not Python's 4,300-digit limit: a bug
            _error(f"internal error: ValueError: {error}. Set LLMPLAN_DEBUG=1 for a traceback and report it.")
            return 1
        _error("the input holds an integer of more than 4,300 digits; no count is that large")
        code = 2
    except MemoryError:
        if debug:
            raise
        _error("the input needs more memory than this machine has; give smaller values or split the input")
        code = 2
    except OSError as error:
        if debug or "--install-completion" not in args:
            raise
        _error(f"--install-completion could not write the completion script or shell start-up file under HOME "
               f"({error.strerror or type(error).__name__}: {error.filename}); set HOME to a folder you can write")
        code = 2
    except Exception as error:  # noqa: BLE001 - the contract: never a traceback unless asked for
        if debug:
            raise
        _error(f"internal error: {type(error).__name__}: {error}. Set LLMPLAN_DEBUG=1 for a traceback and report it.")
        code = 1
    return code
