"""What a command function returns: its rows, and what it said about them."""

from __future__ import annotations

import functools
from typing import Any, Callable

from llmplan.commands import notes
from llmplan.errors import InputError
from llmplan.io.render import integral


class Rows(list):
    """The rows a command prints with -f json, as dicts; `notes` holds the lines it writes to stderr
    ("note: ...", "warning: ..."); `said` the same as (prefix, message) pairs. `detail` carries the
    core's objects the command line's table is drawn from (not part of the output contract)."""

    said: list[tuple[str, str]]
    detail: Any
    whole = True  # counts and bytes already whole (llmplan.io.render does not scan them again)

    def __init__(self, rows: Any = (), said: list[tuple[str, str]] | None = None, detail: Any = None) -> None:
        super().__init__(rows)
        self.said = list(said or [])
        self.detail = detail

    @property
    def notes(self) -> list[str]:
        return [prefix + message for prefix, message in self.said]


def command(function: Callable[..., Any]) -> Callable[..., Rows]:
    """A command function: the notes said while it runs are returned with its rows (Rows.said),
    apart from any held before the call; if it fails they stay held, after those. Counts and byte
    sizes come back whole, as `-f json` prints them (llmplan.io.render.integral)."""

    names: list[str] = []

    @functools.wraps(function)
    def run(*args: Any, **options: Any) -> Rows:
        if not names:
            names.extend(_keywords(function))
        if "**" not in names:
            unknown = [name for name in options if name not in names]
            if unknown:
                shown = ", ".join(sorted(n for n in names if not n.startswith("*")))
                raise InputError(f"llmplan {_name(function)} has no option {unknown[0]!r}; its options: {shown}")
        outer = notes.swap([])
        try:
            rows = function(*args, **options)
        except BaseException:
            notes.swap(outer + notes.take())  # said before the error: still said (the command line writes them first)
            raise
        said = notes.swap(outer)
        result = Rows(integral(rows), getattr(rows, "said", None), getattr(rows, "detail", None))
        result.said = said + [s for s in result.said if s not in said]
        return result

    return run


def _keywords(function: Callable[..., Any]) -> list[str]:
    """The keyword names a function takes ('**' when it takes any: it checks them itself)."""
    import inspect

    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    params = inspect.signature(function).parameters.values()
    return [p.name for p in params if p.kind in kinds] + ["**" for p in params if p.kind == inspect.Parameter.VAR_KEYWORD]


def _name(function: Callable[..., Any]) -> str:
    return function.__name__.replace("_", " ")
