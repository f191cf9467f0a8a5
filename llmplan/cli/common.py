"""What every command shares: writing rows, stderr messages, reading values from stdin (the options: cli/options.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, TypeVar

from llmplan.errors import InputError
from llmplan.io.render import Row, choose_format, render

MAX_TABLE_ROWS = 10_000  # a table is for reading; a longer result belongs in a machine format


class _Shared:
    """Options every command takes without declaring them (added by `add_shared_options`)."""

    wide = False
    quiet = False


shared = _Shared()


def _set(name: str) -> Callable[[Any, Any, Any], Any]:
    def callback(ctx: Any, param: Any, value: Any) -> Any:
        setattr(shared, name, bool(value))
        return value

    return callback


def add_shared_options(command: Any) -> None:
    """Give every command (and every subcommand of a group) --wide and --quiet/-q, so a new command
    gets them by taking FormatOption like the others: nothing to declare."""
    import click

    subcommands = getattr(command, "commands", None)
    if subcommands:
        for sub in subcommands.values():
            add_shared_options(sub)
        return
    names = {opt for p in command.params for opt in getattr(p, "opts", ())}
    if "--wide" not in names:
        command.params.append(click.Option(
            ["--wide"], is_flag=True, expose_value=False, callback=_set("wide"),
            help="Tables: show every column, however wide (by default the least important ones are left out to fit the terminal)."))
    if "--quiet" not in names:
        command.params.append(click.Option(
            ["--quiet", "-q"], is_flag=True, expose_value=False, callback=_set("quiet"), envvar="LLMPLAN_QUIET",
            help="Print no notes or warnings on stderr, only errors (env LLMPLAN_QUIET=1)."))


def output_format(requested: str | None) -> str:
    """Validate --format before any work is done, so a typo fails fast with exit 2."""
    return choose_format(requested)


def emit(
    rows: Iterable[Row],
    fmt: str,
    title: str | None = None,
    columns: Sequence[str] | None = None,
    labels: dict[str, str] | None = None,
    priority: Sequence[str] | None = None,
    footnotes: Sequence[str] = (),
    wrap_first: bool = False,
    column_notes: dict[str, str] | None = None,
) -> None:
    """Write the command's rows to stdout in the chosen format, then the notes said so far (stderr).

    `column_notes` explain columns (key -> text): a table prints those of the columns it shows under
    itself, and none of those it leaves out; the machine formats carry every key, so every one is a note.

    `priority` lists the table's columns from most to least important: when the terminal is too
    narrow the last ones are left out first (a footnote says which; --wide shows them).
    `wrap_first`: long text wraps inside its cell before any column is left out (a summary)."""
    rows = rows if isinstance(rows, list) else list(rows)
    if fmt == "table" and len(rows) > MAX_TABLE_ROWS:
        raise InputError(f"{len(rows):,} rows are too many for a table (at most {MAX_TABLE_ROWS:,}); use --format tsv, csv or jsonl")
    if fmt != "table":
        for text in (column_notes or {}).values():
            note(text)
    render(rows, fmt, title=title, columns=columns, labels=labels, priority=priority, wide=shared.wide, footnotes=footnotes,
           wrap_first=wrap_first, column_notes=column_notes if fmt == "table" else None)
    flush_notes()


# Notes and warnings wait for the table (one place, after it, for every command), each said once:
# llmplan.commands.notes holds them; flush_notes writes them, and the entry point calls it before an
# error line and at the end.
from llmplan.commands.notes import note, warn  # noqa: E402,F401 (what a table adds, said after it)
from llmplan.commands import notes as _notes  # noqa: E402


def _note_width() -> int | None:
    """Wrap notes to the terminal: COLUMNS when set, else stderr's width when it is a terminal, else none."""
    import os
    import shutil

    text = os.environ.get("COLUMNS", "")
    if text.isdigit() and int(text) >= 20:
        return int(text)
    try:
        if sys.stderr.isatty():
            return max(40, shutil.get_terminal_size((100, 24)).columns)
    except (OSError, ValueError, AttributeError):
        pass
    return None


def wrap_note(prefix: str, message: str, width: int | None) -> str:
    """'prefix message' broken at word boundaries to `width`, the continuation lines indented under the message."""
    if width is None:
        return f"{prefix}{message}"
    import textwrap

    return textwrap.fill(message, width=width, initial_indent=prefix, subsequent_indent=" " * len(prefix),
                         break_long_words=False, break_on_hyphens=False)


def discard_notes() -> None:
    """Forget the notes held (the start of a run)."""
    _notes.take()


def say(rows: Any) -> None:
    """Hold the notes a command function returned with its rows (llmplan.commands.result.Rows), to be
    written after the table."""
    for prefix, message in getattr(rows, "said", ()):
        _notes.say(prefix, message)


def flush_notes() -> None:
    """Write the notes and warnings held so far to stderr, wrapped to the terminal, and forget them
    (--quiet: forget them only)."""
    held = _notes.take()
    if not held or shared.quiet:
        return
    width = _note_width()
    try:  # a closed or broken stderr loses the message, never the result
        for prefix, message in held:
            sys.stderr.write(wrap_note(prefix, message, width) + "\n")
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError, UnicodeError):
        pass


def quiet() -> bool:
    return shared.quiet


def stdin_lines(what: str = "values") -> list[str]:
    """Non-empty, non-comment lines of stdin, for options given as `-` (bounded: llmplan.cli.streams).

    One rule for every command: '-' with nothing on stdin is bad input (exit 2), never an empty result."""
    from llmplan.cli.streams import iter_stdin_lines

    lines = list(iter_stdin_lines())
    if not lines:
        raise InputError(f"'-' reads {what} from stdin, one per line, but stdin held none")
    return lines


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


def stdin_chunks(parse: Callable[[str], Sequence[T]], size: int = 20_000) -> Iterable[list[T]]:
    """Values parsed from stdin lines, as they arrive (a block at a time: a million-line sweep in bounded
    memory, a typed line's rows at once; `size` only numbers the line in an error).

    A bad line stops the stream with exit 2; the message names its line (the rows of the lines
    before it may already be written)."""
    from llmplan.cli.streams import iter_stdin_blocks

    chunk: list[T] = []
    seen = 0
    for lines in iter_stdin_blocks():
        for line in lines:
            seen += 1
            try:
                chunk.extend(parse(line))
            except InputError as error:
                raise InputError(f"stdin value {seen:,}: {error}" if seen > size else str(error)) from None
        if chunk:  # what arrived so far: rows come out as values go in
            yield chunk
            chunk = []
    if seen == 0:
        raise InputError("'-' reads values from stdin, one per line, but stdin held none")
    if chunk:
        yield chunk


class RowWriter:
    """Rows written as they come, chunk by chunk, in a machine format: the bytes are those of one
    `render` of all the rows (one CSV/TSV header, one JSON array). A table is rendered once, at close."""

    def __init__(self, fmt: str, title: str | None = None, columns: Sequence[str] | None = None, labels: dict[str, str] | None = None) -> None:
        self.fmt, self.title, self.columns, self.labels = fmt, title, columns, labels
        self.header: str | None = None
        self.count = 0
        self.held: list[Row] = []

    def write(self, rows: list[Row]) -> None:
        from llmplan.io import render as r

        if not rows:
            return
        if not getattr(rows, "whole", False):  # counts and bytes as whole numbers, as `render` writes them
            rows = r.integral(rows)
        if self.fmt == "table":
            self.held.extend(rows)
            if len(self.held) > MAX_TABLE_ROWS:
                raise InputError(f"more than {MAX_TABLE_ROWS:,} rows are too many for a table; use --format tsv, csv or jsonl")
            return
        if self.fmt == "json":
            text = r.to_json(rows)[1:-3]  # '\n  {...},\n  {...}' without the array's brackets
            text = ("[" if self.count == 0 else ",") + text
        elif self.fmt == "jsonl":
            text = r.to_jsonl(rows)
        else:
            text = r.to_csv(rows, "\t" if self.fmt == "tsv" else ",")
            header, _, body = text.partition("\n")
            if self.header is None:
                self.header = header
            elif header != self.header:
                raise AssertionError(f"rows changed their columns mid-stream: {header!r}")
            else:
                text = body
        self.count += len(rows)
        sys.stdout.write(text)
        sys.stdout.flush()

    def close(self) -> None:
        if self.fmt == "table":
            emit(self.held, self.fmt, title=self.title, columns=self.columns, labels=self.labels)
        elif self.fmt == "json":
            sys.stdout.write("\n]\n" if self.count else "[]\n")
            sys.stdout.flush()
        flush_notes()


def catalog(presets_dir: Path | None) -> Any:
    from llmplan.presets import catalog as load

    return load(presets_dir)

# ----- a training step's table (throughput, layout; the row: llmplan.commands.training.build_row) -----------

TABLE_COLUMNS = ["tp", "pp", "vp", "dp", "cp", "ep", "zero", "micro_batch", "recompute", "total_bytes", "step_seconds", "mfu",
                 "compute_fraction", "tp_comm_fraction", "pp_comm_fraction", "bubble_fraction", "dp_comm_fraction",
                 "cp_comm_fraction", "ep_comm_fraction", "optimizer_fraction"]
# Most important first: at 80 columns the breakdown's smaller parts give way before the layout, time and MFU.
TABLE_PRIORITY = ["rank", "tp", "pp", "dp", "step_seconds", "mfu", "total_bytes", "vp", "cp", "ep", "zero", "micro_batch",
                  "recompute", "compute_fraction", "tp_comm_fraction", "dp_comm_fraction", "bubble_fraction",
                  "pp_comm_fraction", "cp_comm_fraction", "ep_comm_fraction", "optimizer_fraction"]
TABLE_LABELS = {"micro_batch": "mb", "recompute": "recomp", "total_bytes": "mem/GPU", "step_seconds": "step",
                "compute_fraction": "comp%", "tp_comm_fraction": "tp%", "pp_comm_fraction": "p2p%", "bubble_fraction": "bubble%",
                "dp_comm_fraction": "dp%", "cp_comm_fraction": "cp%", "ep_comm_fraction": "ep%", "optimizer_fraction": "optim%"}


def table_columns(rows) -> list[str]:
    """The table drops parallel dimensions and breakdown parts that are zero in every row."""
    keep = []
    for c in TABLE_COLUMNS:
        if c in ("cp", "ep", "vp") and all(r[c] == 1 for r in rows):
            continue
        if c.endswith("_fraction") and c != "compute_fraction" and all(r[c] < 0.0005 for r in rows):
            continue
        keep.append(c)
    return keep
