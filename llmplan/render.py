"""Rows -> table | json | jsonl | csv | tsv. The only module that writes results to stdout.

Every command returns rows: a list of flat dicts with stable snake_case keys and values in base
units (counts, FLOPs, bytes, seconds). Machine formats print them at full precision; the table
humanises each value by its key (see `humanize`).
"""

from __future__ import annotations

import json
import math
import os
import sys
from typing import Any, Iterable, Sequence, TextIO

from llmplan.errors import InputError

FORMATS = ("table", "json", "jsonl", "csv", "tsv")

Row = dict[str, Any]


def choose_format(requested: str | None, stream: TextIO | None = None) -> str:
    """--format, else LLMPLAN_FORMAT, else table on a terminal and tsv in a pipe."""
    source = "--format"
    if requested is None:
        requested = os.environ.get("LLMPLAN_FORMAT") or None
        source = "LLMPLAN_FORMAT"
    if requested is None:
        stream = stream or sys.stdout
        return "table" if _isatty(stream) else "tsv"
    name = requested.strip().lower()
    if name not in FORMATS:
        import difflib

        close = difflib.get_close_matches(name, FORMATS, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise InputError(f"{source} {requested!r} is not one of {', '.join(FORMATS)}{hint}")
    return name


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _clean(value: Any) -> Any:
    """JSON has no NaN or infinity: a non-finite float becomes null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def columns_of(rows: Sequence[Row]) -> list[str]:
    """All keys, in the order they first appear."""
    seen: dict[str, None] = {}
    for row in rows:
        for key in row:
            seen.setdefault(key, None)
    return list(seen)


def _delimited_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    if isinstance(value, (list, tuple)):
        return ";".join(_delimited_cell(v) for v in value)
    return str(value)


def to_json(rows: Sequence[Row]) -> str:
    return json.dumps([{k: _clean(v) for k, v in row.items()} for row in rows], indent=2, allow_nan=False) + "\n"


def to_jsonl(rows: Sequence[Row]) -> str:
    return "".join(json.dumps({k: _clean(v) for k, v in row.items()}, allow_nan=False) + "\n" for row in rows)


def to_csv(rows: Sequence[Row], delimiter: str = ",") -> str:
    import csv
    import io

    keys = columns_of(rows)
    if not keys:
        return ""
    buffer = io.StringIO()
    if delimiter == "\t":
        # TSV for shell tools: no quoting; tabs and newlines inside a value become spaces.
        lines = ["\t".join(keys)]
        for row in rows:
            cells = (_delimited_cell(row.get(k)) for k in keys)
            lines.append("\t".join(c.replace("\t", " ").replace("\n", " ") for c in cells))
        return "\n".join(lines) + "\n"
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(keys)
    for row in rows:
        writer.writerow([_delimited_cell(row.get(k)) for k in keys])
    return buffer.getvalue()


# ---------------------------------------------------------------------------- humanised table

_COUNT_KEYS = ("params", "tokens")


def humanize(key: str, value: Any) -> str:
    """One cell of the table, formatted by what its key says it holds."""
    from llmplan import units

    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return ", ".join(humanize(key, v) for v in value)
    if not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if key.endswith("_bytes") or key == "bytes":
        return units.format_bytes(value)
    if key.endswith("flops") or key == "flops" or key.startswith("flops_"):
        if key.endswith("per_token") or "_per_token" in key:
            return units.format_count(value)
        return units.format_flops(value).replace(" FLOPs", "")
    if key.endswith("_seconds") or key == "seconds":
        return units.format_duration(value)
    if key.endswith("_per_second") or key.endswith("_per_s"):
        return units.format_count(value) + "/s"
    if key.endswith("_fraction") or key.endswith("_share") or key in ("mfu", "hfu"):
        return f"{value * 100:.1f}%"
    if "_per_" not in key and any(key == k or key.endswith("_" + k) or key.startswith(k + "_") for k in _COUNT_KEYS):
        return units.format_count(value)
    if key.endswith("gpu_hours") or key == "gpu_hours":
        return units.format_count(value)
    if key == "pf_days" or key.endswith("pf_days"):
        return units.format_number(value, 4)
    return units.format_number(value)


def _looks_numeric(value: Any) -> bool:
    """Numbers, and humanised numbers such as '12.55 GiB' or '989.4', sit right-aligned."""
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    return isinstance(value, str) and value[:1].isdigit()


def to_table(
    rows: Sequence[Row],
    title: str | None = None,
    columns: Sequence[str] | None = None,
    labels: dict[str, str] | None = None,
    width: int | None = None,
    color: bool = False,
) -> str:
    """A rich table as text. `columns` picks and orders the keys shown (default: all)."""
    from rich.console import Console
    from rich.table import Table
    from rich import box

    keys = list(columns) if columns else columns_of(rows)
    labels = labels or {}
    # The title is its own line above the table, so a narrow table does not fold a long title.
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    cells = {key: [humanize(key, r.get(key)) for r in rows] for key in keys}
    numeric = {}
    for key in keys:
        present = [r.get(key) for r in rows if r.get(key) is not None and r.get(key) != "-"]
        numeric[key] = bool(present) and all(_looks_numeric(v) for v in present)
    widest = {key: max([len(c) for c in cells[key]] + [len(labels.get(key, key))]) for key in keys}
    # When every column fits at its natural width, numbers never wrap and text columns give way;
    # when not even that fits, every column may fold (a narrow terminal still sees every value).
    roomy = sum(widest[k] + 3 for k in keys) <= (width or _terminal_width())
    for key in keys:
        label = labels.get(key, key)
        if numeric[key] and roomy:
            table.add_column(label, justify="right", no_wrap=True, min_width=widest[key])
        else:
            table.add_column(label, justify="right" if numeric[key] else "left", overflow="fold")
    for index in range(len(rows)):
        table.add_row(*(cells[k][index] for k in keys))
    console = Console(
        width=width or _terminal_width(),
        no_color=not color,
        color_system="auto" if color else None,
        force_terminal=color,
        highlight=False,
        record=False,
        file=_NullFile(),
    )
    with console.capture() as capture:
        if title:
            console.print(title, markup=False, highlight=False)
        console.print(table)
    return capture.get()


class _NullFile:
    def write(self, _text: str) -> int:
        return 0

    def flush(self) -> None:
        pass


def _terminal_width() -> int:
    import shutil

    return max(60, shutil.get_terminal_size((120, 24)).columns)


def render(
    rows: Iterable[Row],
    fmt: str,
    title: str | None = None,
    columns: Sequence[str] | None = None,
    labels: dict[str, str] | None = None,
    stream: TextIO | None = None,
) -> None:
    """Write rows to stdout (or `stream`) in `fmt`. The table shows `columns`; machine formats show every key."""
    rows = list(rows)
    stream = stream or sys.stdout
    if fmt == "json":
        text = to_json(rows)
    elif fmt == "jsonl":
        text = to_jsonl(rows)
    elif fmt == "csv":
        text = to_csv(rows)
    elif fmt == "tsv":
        text = to_csv(rows, "\t")
    elif fmt == "table":
        color = _isatty(stream) and not os.environ.get("NO_COLOR")
        text = to_table(rows, title=title, columns=columns, labels=labels, color=color) if rows else ""
    else:
        raise InputError(f"unknown format {fmt!r}")
    stream.write(text)
    stream.flush()
