"""llmplan from Python: one function per command, returning the rows `-f json` prints.

    import llmplan
    rows = llmplan.plan(gpu="h100", gpus=256, days=30)
    rows[0]["params"]                      # the same number `llmplan plan ... -f json` prints
    llmplan.memory(preset="llama-3.1-8b", train=True, gpu="h100")
    llmplan.optimal(budget=[1e21, 1e22, 1e23])   # a list where the command reads '-' from stdin

Each function takes the command's options as keyword arguments: the option's long name with '_'
for '-' (`gpu_hours=` for --gpu-hours, `hf=` for --hf), values as the command line takes them
(strings with units such as "1.4T" or "30", or numbers), True/False for switches (`train=True`,
`tied_embeddings=False`), a list for a repeatable option. A command's arguments (fit's RUNS) are
positional or by name; fit also takes the runs as a list of dicts. They return a list of dicts with
the keys of docs/schema.md; `.notes` holds the notes and warnings the command wrote to stderr.

Drift-proof by construction: a function builds the command line from its arguments and runs the
command's own code in this process (the click command behind `llmplan NAME`, with `-f json`),
then parses what it printed. There is no second implementation to fall out of step.

Errors raise llmplan.errors.LlmplanError (InputError for bad input, WorkError for work that failed)
with the one-line message the command prints after "llmplan: error: ". An unknown keyword is an
InputError naming the command's options. Calls hold a lock and swap sys.stdin, sys.stdout and
sys.stderr while the command runs: one call at a time per process.
"""

from __future__ import annotations

import io
import json
import os
import sys
import threading
from typing import Any

from llmplan.errors import InputError, LlmplanError

__all__ = ["Rows", "plan", "optimal", "loss", "compute", "compare", "fit", "arch", "memory", "throughput", "layout",
           "serve", "dtypes", "gpus", "presets", "data", "run"]

_LOCK = threading.RLock()


from llmplan.commands.result import Rows  # noqa: E402


def _group() -> Any:
    import typer

    from llmplan import cli

    command = typer.main.get_command(cli.app)
    cli._plain_help(command)
    return command


def _command(group: Any, path: list[str]) -> Any:
    import click

    command, ctx = group, click.Context(group, info_name="llmplan")
    for name in path:
        sub = command.get_command(ctx, name) if hasattr(command, "get_command") else None
        if sub is None:
            raise InputError(f"no command 'llmplan {' '.join(path)}'")
        command, ctx = sub, click.Context(sub, info_name=name, parent=ctx)
    return command


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return os.fspath(value) if isinstance(value, os.PathLike) else str(value)


def _argv(command: Any, path: list[str], args: tuple, options: dict[str, Any]) -> tuple[list[str], str | None]:
    """The command line for these arguments, and the text to put on stdin (a list given where the
    command reads '-', or fit's runs given as records)."""
    import click

    by_name: dict[str, tuple[Any, bool]] = {}  # keyword -> (param, given by its secondary (--no-) name)
    for p in command.params:
        if p.name in ("fmt", "format", "help") or getattr(p, "hidden", False):
            continue
        by_name.setdefault(p.name, (p, False))
        for opt in getattr(p, "opts", []):
            if opt.startswith("--"):
                by_name.setdefault(opt[2:].replace("-", "_"), (p, False))
        for opt in getattr(p, "secondary_opts", []):
            if opt.startswith("--"):
                by_name.setdefault(opt[2:].replace("-", "_"), (p, True))
    arguments = [p for p in command.params if isinstance(p, click.Argument)]
    if len(args) > len(arguments):
        raise InputError(f"llmplan {' '.join(path)} takes {len(arguments)} positional argument(s), {len(args)} were given")
    given = dict(zip((p.name for p in arguments), args))
    for name in given:
        if name in options:
            raise InputError(f"llmplan {' '.join(path)}: {name} given twice (positionally and by name)")
    given.update(options)
    argv: list[str] = []
    positional: list[str] = []
    stdin: str | None = None
    for name, value in given.items():
        if name not in by_name:
            known = sorted({max(getattr(p, "opts", [p.name]), key=len).lstrip("-").replace("-", "_") for p, _ in by_name.values()})
            raise InputError(f"llmplan {' '.join(path)} has no option {name!r}; its options: {', '.join(known)}")
        param, negative = by_name[name]
        if value is None:
            continue
        if negative and isinstance(value, bool):  # untied_embeddings=True is tied_embeddings=False
            value = not value
        if isinstance(param, click.Argument):
            if isinstance(value, (list, tuple)) and value and isinstance(value[0], dict):
                stdin = "\n".join(json.dumps(record) for record in value) + "\n"
                value = "-"
            positional.append(_text(value))
            continue
        long = max(param.opts, key=len) if any(o.startswith("--") for o in param.opts) else param.opts[0]
        if param.is_flag and not param.count:
            if value is True:
                argv.append(long)
            elif value is False and param.secondary_opts:
                argv.append(max(param.secondary_opts, key=len))
            elif value is not False:
                raise InputError(f"llmplan {' '.join(path)}: {name}= takes True or False, not {value!r}")
            continue
        if isinstance(value, (list, tuple)):
            if param.multiple:
                for item in value:
                    argv += [long, _text(item)]
                continue
            if stdin is not None:
                raise InputError(f"llmplan {' '.join(path)}: one list at a time (the command reads it from stdin as '-')")
            stdin = "".join(_text(item) + "\n" for item in value)
            argv += [long, "-"]
            continue
        argv += [long, _text(value)]
    return [*path, *argv, "-f", "json", *(["--"] if positional else []), *positional], stdin


def run(command: str, *args: Any, **options: Any) -> Rows:
    """Run `llmplan COMMAND` (e.g. "memory" or "presets list") with these arguments: the rows its -f
    json prints. The functions below are this with the command's name filled in."""
    import click

    from llmplan.cli import common

    path = command.split()
    with _LOCK:
        group = _group()
        argv, stdin = _argv(_command(group, path), path, args, options)
        out, err = io.StringIO(), io.StringIO()
        saved = sys.stdin, sys.stdout, sys.stderr
        shared = dict(vars(common.shared)) if hasattr(common, "shared") and hasattr(common.shared, "__dict__") else None
        sys.stdin, sys.stdout, sys.stderr = io.StringIO(stdin or ""), out, err
        common.discard_notes()
        try:
            group.main(args=argv, prog_name="llmplan", standalone_mode=False)
        except LlmplanError:
            raise
        except click.exceptions.UsageError as error:
            raise InputError(" ".join(error.format_message().split()) + f" (see 'llmplan {command} --help')") from None
        except click.exceptions.ClickException as error:
            raise InputError(" ".join(error.format_message().split())) from None
        except click.exceptions.Exit as done:
            # A command's own verdict (memory --check: exit 3, "does not fit") keeps its rows, which say so.
            if done.exit_code and not out.getvalue().strip():
                raise InputError(err.getvalue().strip().splitlines()[-1] if err.getvalue().strip() else f"llmplan {command} stopped") from None
        finally:
            common.flush_notes()  # notes wait for the table (llmplan.cli.common); the entry point would write them now
            sys.stdin, sys.stdout, sys.stderr = saved
            if shared is not None:
                vars(common.shared).update(shared)
        text = out.getvalue()
    rows = json.loads(text) if text.strip() else []
    said = []
    for line in err.getvalue().splitlines():
        prefix = next((p for p in ("note: ", "warning: ") if line.startswith(p)), "")
        if line.strip():
            said.append((prefix, line[len(prefix):]))
    return Rows(rows, said)


def _doc(command: str, summary: str, example: str) -> str:
    return (f"{summary}\n\nThe options of `llmplan {command} --help` as keyword arguments ('-' -> '_'); returns the rows "
            f"`llmplan {command} ... -f json` prints (llmplan.api.Rows: a list of dicts, .notes for stderr).\n\n"
            f"Example: {example}\n")


def _make(command: str, summary: str, example: str) -> Any:
    def function(*args: Any, **options: Any) -> Rows:
        import importlib.util

        name = command.split()[0]
        if importlib.util.find_spec(f"llmplan.commands.{name}") is not None:
            import importlib

            return getattr(importlib.import_module(f"llmplan.commands.{name}"), name)(*args, **options)
        return run(command, *args, **options)  # a command not yet a function of llmplan.commands

    function.__name__ = function.__qualname__ = command.split()[0] if " " not in command else command.replace(" ", "_")
    function.__doc__ = _doc(command, summary, example)
    function.__module__ = __name__
    return function


plan = _make("plan", "The whole plan for a budget of GPUs and time: size, tokens, loss, shape, layout, time, cost.",
             'llmplan.plan(gpu="h100", gpus=256, days=30)[0]["params"]')
optimal = _make("optimal", "Compute-optimal parameters and tokens (and loss) for a budget, by a scaling law.",
                'llmplan.optimal(budget="3000pfd", law="chinchilla")')
loss = _make("loss", "The loss a scaling law predicts for N parameters and D tokens.", 'llmplan.loss(params="70B", tokens="1.4T")')
compute = _make("compute", "The training compute (FLOPs, GPU-hours, time, cost) of a model and its tokens.",
                'llmplan.compute(params="7B", tokens="2T", gpu="h100", gpus=64)')
compare = _make("compare", "Published models against the compute-optimal frontier.", 'llmplan.compare(law="chinchilla")')
fit = _make("fit", "Fit a scaling law to your own runs (a file, or a list of dicts with params, tokens, loss).",
            'llmplan.fit("runs.csv") or llmplan.fit([{"params": 7e7, "tokens": 1e9, "loss": 3.9}, ...])')
arch = _make("arch", "A transformer's exact parameter count, FLOPs per token and KV cache.", 'llmplan.arch(preset="llama-3.1-8b")')
memory = _make("memory", "Memory per GPU to train or serve a model, by phase of the step.",
               'llmplan.memory(preset="llama-3.1-8b", train=True, gpu="h100")')
throughput = _make("throughput", "Step time and MFU of a training run on a cluster, part by part.",
                   'llmplan.throughput(preset="llama-2-7b", gpu="h100", gpus=64, global_batch=512)')
layout = _make("layout", "The parallel layouts (tensor, pipeline, data, context) that fit, fastest first.",
               'llmplan.layout(preset="llama-2-70b", gpu="h100", gpus=512, global_batch=1024)')
serve = _make("serve", "Serving a model: prefill, decode, KV capacity and cost per token.", 'llmplan.serve(preset="llama-3.1-8b", gpu="h100")')
dtypes = _make("dtypes", "Number formats: bits, range, precision.", "llmplan.dtypes()")
gpus = _make("gpus", "The GPU catalog: peaks, memory, links.", 'llmplan.gpus()')


def presets(action: str = "list", *args: Any, **options: Any) -> Rows:
    """The presets (`llmplan presets list|show ...`): models, laws, GPUs and more.

    Example: llmplan.api.presets("list", kind="models"); llmplan.api.presets("show", "llama-3.1-8b")
    (at the top level `llmplan.presets` is the module that loads presets, so this one lives in llmplan.api)."""
    from llmplan.commands.presets import presets as dispatch

    return dispatch(action, *args, **options)


def data(action: str, *args: Any, **options: Any) -> Rows:
    """Data (`llmplan data filter|domain|mix ...`): how hard to filter a pool, how to size a domain model,
    which mixture. The action is the subcommand; the rest are its options ('-' -> '_') and arguments.

    Example: llmplan.data("filter", pool="15T", budget="1e24"); llmplan.data("domain", domain_tokens="363B",
    budget="1e23"); llmplan.data("mix", "runs.csv", weights="0.3,0.7")."""
    from llmplan.commands.data import data as dispatch

    return dispatch(action, *args, **options)
