"""llmplan from Python: one function per command, returning the rows `-f json` prints.

    import llmplan
    rows = llmplan.plan(gpu="h100", gpus=256, days=30)
    rows[0]["params"]                      # the same number `llmplan plan ... -f json` prints
    llmplan.memory(preset="llama-3.1-8b", train=True, gpu="h100")
    llmplan.optimal(budget=[1e21, 1e22, 1e23])   # a list where the command reads '-' from stdin

Each function takes the command's options as keyword arguments: the option's long name with '_'
for '-' (`gpu_hours=` for --gpu-hours, `hf=` for --hf), values as the command line takes them
(strings with units such as "1.4T" or "30", or numbers), True/False for switches (`train=True`,
`tied_embeddings=False`), a list for a repeatable option or where the command reads '-' from stdin.
A command's arguments (fit's RUNS) are positional or by name; fit also takes the runs as a list of
dicts. They return llmplan.api.Rows: a list of dicts with the keys of docs/schema.md, `.notes` the
notes and warnings the command writes to stderr.

Drift-proof by construction: these are the functions of llmplan.commands, which the command line
itself calls (`llmplan memory ...` parses its options, calls llmplan.commands.memory.memory and
renders the rows). What only a terminal has stays out: --format, --wide, --quiet, --check's exit code.

Errors raise llmplan.errors.LlmplanError (InputError for bad input, WorkError for work that failed)
with the one-line message the command prints after "llmplan: error: ". An unknown keyword is an
InputError naming the command's options.
"""

from __future__ import annotations

import importlib
from typing import Any

from llmplan.commands.result import Rows

# name -> the module of llmplan.commands that defines it (a function of the same name)
COMMANDS = ("plan", "optimal", "loss", "compute", "compare", "fit", "arch", "memory", "throughput", "layout", "serve",
            "dtypes", "gpus", "presets", "data")

__all__ = ["Rows", *COMMANDS, "run"]


def __getattr__(name: str) -> Any:
    """The command functions, each loaded on first use (`import llmplan` stays light)."""
    if name in COMMANDS:
        function = getattr(importlib.import_module(f"llmplan.commands.{name}"), name)
        globals()[name] = function
        return function
    raise AttributeError(f"module 'llmplan.api' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def run(command: str, *args: Any, **options: Any) -> Rows:
    """Run `llmplan COMMAND` by its name ("memory", or a group's "presets list", "data filter") with
    these arguments: the rows its -f json prints. The functions of this module are this with the name
    filled in."""
    from llmplan.errors import InputError

    name, *action = command.split()
    if name not in COMMANDS or len(action) > 1 or (action and name not in ("presets", "data")):
        raise InputError(f"no command 'llmplan {command}'; the commands are {', '.join(COMMANDS)}")
    if name == "data" and not action:
        raise InputError("'llmplan data' needs its action: run('data filter', ...), 'data domain' or 'data mix'")
    return __getattr__(name)(*action, *args, **options)
