"""What a command function returns: its rows, and what it said about them."""

from __future__ import annotations

import functools
from typing import Any, Callable

from llmplan.commands import notes
from llmplan.errors import InputError, LlmplanError
from llmplan.io.render import integral


class Rows(list):
    """The rows a command prints with -f json, as dicts; `notes` holds the lines it writes to stderr
    ("note: ...", "warning: ..."); `said` the same as (prefix, message) pairs. `detail` carries the
    core's objects the command line's table is drawn from (not part of the output contract)."""

    said: list[tuple[str, str]]
    detail: Any
    whole = False  # True: counts and bytes already whole (the command decorator's; llmplan.io.render trusts it)

    def __init__(self, rows: Any = (), said: list[tuple[str, str]] | None = None, detail: Any = None) -> None:
        super().__init__(rows)
        self.said = list(said or [])
        self.detail = detail

    @property
    def notes(self) -> list[str]:
        return [prefix + message for prefix, message in self.said]


def command(function: Callable[..., Any]) -> Callable[..., Rows]:
    """A command function: the notes said while it runs are returned with its rows (Rows.said),
    apart from any held before the call; if it fails with an LlmplanError they go with the error
    (error.said), and the caller's stay as they were. Counts and byte
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
        except LlmplanError as error:  # what it said before failing goes with the error (the command line writes it first)
            error.said = notes.swap(outer) + list(getattr(error, "said", ()))  # type: ignore[attr-defined]
            if getattr(error, "rows", None) is not None:  # rows a failure still computed (a fit that did not converge)
                error.rows = _whole(error.rows)  # type: ignore[attr-defined]
            raise
        except BaseException:
            notes.swap(outer + notes.take())
            raise
        said = notes.swap(outer)
        result = _whole(rows)
        result.said = said + [s for s in result.said if s not in said]
        return result

    return run


def _whole(rows: Any) -> Rows:
    """The rows with counts and byte sizes whole, as -f json prints them, and marked so."""
    result = Rows(integral(rows), getattr(rows, "said", None), getattr(rows, "detail", None))
    result.whole = True
    return result


def _keywords(function: Callable[..., Any]) -> list[str]:
    """The keyword names a function takes ('**' when it takes any: it checks them itself)."""
    import inspect

    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    params = inspect.signature(function).parameters.values()
    return [p.name for p in params if p.kind in kinds] + ["**" for p in params if p.kind == inspect.Parameter.VAR_KEYWORD]


def _name(function: Callable[..., Any]) -> str:
    return function.__name__.replace("_", " ")
