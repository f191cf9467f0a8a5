"""What every command shares: the output options, stderr messages, reading values from stdin."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any, Callable, Iterable, Optional, Sequence, TypeVar

import typer


from llmplan.errors import InputError
from llmplan.render import Row, choose_format, render

MAX_TABLE_ROWS = 10_000  # a table is for reading; a longer result belongs in a machine format

FormatOption = Annotated[
    Optional[str],
    typer.Option(
        "--format",
        "-f",
        help="Output format: table, json, jsonl, csv or tsv. Default: table on a terminal, tsv otherwise (env LLMPLAN_FORMAT).",
        show_default=False,
    ),
]

PresetsOption = Annotated[
    Optional[Path],
    typer.Option(
        "--presets",
        help="A folder with models.toml, laws.toml and/or gpus.toml that add to or override the shipped presets (env LLMPLAN_PRESETS).",
        show_default=False,
    ),
]


def output_format(requested: str | None) -> str:
    """Validate --format before any work is done, so a typo fails fast with exit 2."""
    return choose_format(requested)


def emit(
    rows: Iterable[Row],
    fmt: str,
    title: str | None = None,
    columns: Sequence[str] | None = None,
    labels: dict[str, str] | None = None,
) -> None:
    """Write the command's rows to stdout in the chosen format."""
    rows = list(rows)
    if fmt == "table" and len(rows) > MAX_TABLE_ROWS:
        raise InputError(f"{len(rows):,} rows are too many for a table (at most {MAX_TABLE_ROWS:,}); use --format tsv, csv or jsonl")
    render(rows, fmt, title=title, columns=columns, labels=labels)


def _stderr(prefix: str, message: str) -> None:
    sys.stderr.write(f"{prefix}{message}\n")
    sys.stderr.flush()


def note(message: str) -> None:
    """Context for a person reading the output (stderr, never mixed with results)."""
    _stderr("note: ", message)


def warn(message: str) -> None:
    """Something the result should be read with (stderr)."""
    _stderr("warning: ", message)


def stdin_lines() -> list[str]:
    """Non-empty, non-comment lines of stdin, for options given as `-`."""
    if sys.stdin is None or sys.stdin.closed:
        raise InputError("'-' reads values from stdin, but there is no stdin")
    try:
        text = sys.stdin.read()
    except UnicodeDecodeError:
        raise InputError("stdin is not UTF-8 text; give one value per line") from None
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


T = TypeVar("T")


def expand(values: Sequence[str] | None, parse: Callable[[str], T]) -> list[T]:
    """Parse a repeatable option; a value of '-' reads one value per line from stdin (once)."""
    result: list[T] = []
    used_stdin = False
    for value in values or ():
        if value.strip() == "-":
            if used_stdin:
                continue
            used_stdin = True
            result.extend(parse(line) for line in stdin_lines())
        else:
            result.append(parse(value))
    return result


def catalog(presets_dir: Path | None) -> Any:
    from llmplan.presets import catalog as load

    return load(presets_dir)


def debug() -> bool:
    return bool(os.environ.get("LLMPLAN_DEBUG"))
