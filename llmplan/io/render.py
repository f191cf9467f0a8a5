"""Rows -> table | json | jsonl | csv | tsv. The only module that writes results to stdout.

Every command returns rows: a list of flat dicts with stable snake_case keys and values in base
units (counts, FLOPs, bytes, seconds). Machine formats print them at full precision; the table
humanises each value by its key (see `humanize`).
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from typing import Any, Iterable, Sequence, TextIO

from llmplan.errors import InputError
from llmplan.records import record

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
    fast = _plain_jsonl(rows)
    if fast is not None:
        return fast
    return "".join(json.dumps({k: _clean(v) for k, v in row.items()}, allow_nan=False) + "\n" for row in rows)


_PLAIN = (int, str, bool, type(None))


def _same_keys(rows: Sequence[Row]) -> bool:
    first = rows[0].keys()
    return all(row.keys() == first for row in rows)


def _plain_jsonl(rows: Sequence[Row]) -> str | None:
    """to_jsonl's bytes, faster for long sweeps: rows of plain finite values go to json.dumps whole,
    with nothing to clean (no NaN, no lists). None when a value needs cleaning: the slow path then."""
    if not rows or not _same_keys(rows):
        return None
    for key in rows[0]:
        values = [row[key] for row in rows]
        kinds = set(map(type, values))
        if not kinds <= set(_PLAIN) | {float}:
            return None
        if float in kinds and not all(math.isfinite(v) for v in values if type(v) is float):
            return None
    dumps = json.JSONEncoder(allow_nan=False).encode
    return "".join(dumps(row) + "\n" for row in rows)


def _fast_tsv(rows: Sequence[Row]) -> str | None:
    """to_csv's TSV bytes, faster for long sweeps: formatted column by column (the same float repr and
    str as `_delimited_cell`); a column of mixed or other types cell by cell. None when the rows do
    not share their keys: the slow path then."""
    if not rows or not rows[0] or not _same_keys(rows):
        return None
    keys = list(rows[0])
    columns = []
    for key in keys:
        values = [row[key] for row in rows]
        kinds = set(map(type, values))
        if kinds == {float} and all(map(math.isfinite, values)):
            columns.append(list(map(float.__repr__, values)))
        elif kinds == {int}:
            columns.append(list(map(str, values)))
        elif kinds == {str} and not any(c in "".join(values) for c in "\t\n"):
            columns.append(values)
        elif kinds == {bool}:
            columns.append(["true" if v else "false" for v in values])
        elif kinds == {type(None)}:
            columns.append([""] * len(values))
        else:
            columns.append([_delimited_cell(v).replace("\t", " ").replace("\n", " ") for v in values])
    return "\t".join(keys) + "\n" + "\n".join(map("\t".join, zip(*columns))) + "\n"


def to_csv(rows: Sequence[Row], delimiter: str = ",") -> str:
    import csv
    import io

    if delimiter == "\t":
        fast = _fast_tsv(rows)
        if fast is not None:
            return fast
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


# ---------------------------------------------------------------------------- counts as integers


def is_count_key(key: str) -> bool:
    """Parameter and token counts: params, tokens, *_params, *_tokens (not ratios such as tokens_per_param)."""
    return "_per_" not in key and re.fullmatch(r"(?:\w+_)?(?:params|tokens)(?:_unlimited_data|_20x)?", key) is not None


def is_bytes_key(key: str) -> bool:
    """Sizes in bytes: *_bytes (not rates such as *_bytes_per_token)."""
    return key.endswith("_bytes") and "_per_" not in key


def integral(rows: Sequence[Row]) -> list[Row]:
    """Counts and byte sizes as integers: a derived count (a law's optimum, a share of a budget) is
    rounded to the nearest whole number, so JSON shows 7554878310, not 7554878310.400001."""
    out = []
    keys = None  # rows of one command share their keys: classify them once, then check only those
    counted: list[str] = []
    for row in rows:
        if keys is None or row.keys() != keys:
            keys = row.keys()
            counted = [k for k in keys if is_count_key(k) or is_bytes_key(k)]
        fixed = None
        for key in counted:
            value = row[key]
            if isinstance(value, float) and math.isfinite(value):
                if fixed is None:
                    fixed = dict(row)
                fixed[key] = int(round(value))
        out.append(row if fixed is None else fixed)
    return out


# ---------------------------------------------------------------------------- humanised cells

_COUNT_KEYS = ("params", "tokens")
_TIME_UNITS = ((1e-6, "µs"), (1e-3, "ms"), (1, "s"), (60, "min"), (3600, "h"), (86_400, "days"), (86_400 * 365.25, "years"))
_PREFIXES = ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K"), (1.0, ""))


def is_loss_key(key: str) -> bool:
    return key == "loss" or key.endswith("_loss") or key.startswith("loss_")


def _finite(values: Sequence[Any]) -> list[float]:
    return [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]


def _median(numbers: list[float]) -> float:
    ordered = sorted(abs(x) for x in numbers)
    return ordered[len(ordered) // 2] if ordered else 0.0


def format_column(key: str, values: Sequence[Any]) -> list[str]:
    """The cells of one table column, formatted by what its key holds, one way for the whole column:
    loss to 3 decimals, one time unit, one SI prefix per rate, PF-days plain unless a value needs an
    exponent (then all of them carry one)."""
    numbers = _finite(values)
    numeric_values = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]

    def each(fmt: Any) -> list[str]:
        return [fmt(v) if v in numeric_values and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else _cell(key, v) for v in values]

    if not numbers:
        return [_cell(key, v) for v in values]
    if is_loss_key(key):
        return each(lambda v: f"{v:.3f}")
    if key.endswith("_seconds") or key == "seconds":
        # One unit for the whole column, the largest the typical value fills twice over.
        median = _median(numbers)
        size, unit = next(((s, u) for s, u in reversed(_TIME_UNITS) if median >= 2 * s), _TIME_UNITS[0]) if median else (1, "s")

        def duration(v: float) -> str:
            x = v / size
            if abs(x) >= 100 or x == 0:
                return f"{x:,.0f} {unit}"
            # short times (a step, a token) to 3 significant figures; long ones (a run) to a tenth
            return f"{x:.{1 if abs(x) >= 10 or size >= 60 else 2}f} {unit}"

        return each(duration)
    if key.endswith("flops_per_second") or key.endswith("bytes_per_second"):
        base = "FLOP/s" if "flops" in key else "B/s"
        size, prefix = next(((s, p) for s, p in _PREFIXES if _median(numbers) >= s), (1.0, ""))
        return each(lambda v: f"{v / size:,.4g} {prefix}{base}")
    if key == "pf_days" or key.endswith("_pf_days"):
        plain = all(x == 0 or 0.01 <= abs(x) < 1e15 for x in numbers)
        if plain:
            return each(lambda v: f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}")
        return each(lambda v: f"{v:.3e}")
    plain = _cell(key, 10_000) == "10,000"  # a plain number column (not a count, size, time, ...)
    if plain and any(abs(x) >= 10_000 for x in numbers) and all(x.is_integer() and abs(x) < 1e15 for x in numbers):
        return each(lambda v: f"{int(v):,}")  # whole numbers: thousands separators in every row, or in none
    cells = [_cell(key, v) for v in values]
    if plain:  # an exponent in one row and none in the next reads as two quantities: all or none
        shown = [c for c, v in zip(cells, values) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
        if any("e" in c for c in shown) and not all("e" in c for c in shown):
            if all(x == 0 or 1e-3 <= abs(x) < 1e15 for x in numbers):  # plain numbers all: 36,000 not 3.6e+04
                return each(lambda v: f"{v:,.0f}" if abs(v) >= 1e4 else _cell(key, v))
            return each(lambda v: f"{v:.4e}")  # 5 significant figures: 65,504 stays exact as 6.5504e+04
    return cells


def _cell(key: str, value: Any) -> str:
    """One cell, formatted by what its key says it holds."""
    from llmplan import units

    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return ", ".join(_cell(key, v) for v in value)
    if not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if is_loss_key(key):
        return f"{value:.3f}"
    if key in ("memory_bytes", "gpu_memory_bytes"):  # a GPU's capacity, in the datasheet's GB
        return units.format_bytes(value, binary=False)
    if "_bytes_per_" in key:
        return units.format_bytes(value)
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
    if key.endswith("cost_usd") or key.startswith("cost_"):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"
    return units.format_number(value)


def humanize(key: str, value: Any) -> str:
    """One value as the table shows it (see `format_column` for a whole column)."""
    return format_column(key, [value])[0]


def _looks_numeric(value: Any) -> bool:
    """Numbers, and humanised numbers such as '12.55 GiB' or '989.4', sit right-aligned."""
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    return isinstance(value, str) and (value[:1].isdigit() or (value[:1] == "-" and value[1:2].isdigit()))


# ---------------------------------------------------------------------------- the table

EXTRAPOLATED_NOTE = "* beyond the range the law was fitted on: an extrapolation"


@record(frozen=False)
class _Column:
    key: str
    label: str
    cells: list[str]
    numeric: bool

    @property
    def cell_width(self) -> int:
        return max((len(c) for c in self.cells), default=0)

    def word_width(self) -> int:
        """The widest word: text cells may wrap between words, never inside one."""
        return max((len(w) for c in self.cells for w in c.split()), default=0)

    @property
    def wraps(self) -> bool:
        return not self.numeric and any(" " in c for c in self.cells)


def _header_pieces(label: str) -> list[str]:
    """A header's unbreakable pieces: it may break after a space, '_', '/' or '-'."""
    return re.findall(r"[^\s_/-]*[_/-]|[^\s_/-]+\s*|\s+", label) or [label]


def _wrap_header(label: str, width: int) -> str:
    if len(label) <= width:
        return label
    lines, line = [], ""
    for piece in _header_pieces(label):
        if line and len((line + piece).rstrip()) > width:
            lines.append(line.rstrip())
            line = piece.lstrip()
        else:
            line += piece
    lines.append(line.rstrip())
    return "\n".join(l for l in lines if l)


def _header_min(label: str) -> int:
    return max((len(p.rstrip()) for p in _header_pieces(label)), default=0)


def table_width(widths: Sequence[int]) -> int:
    """Characters a SIMPLE_HEAD table without edge padding takes: an edge each side, 3 between columns."""
    return 2 + sum(widths) + 3 * max(0, len(widths) - 1)


def _layout(cols: Sequence[_Column], width: int, wrap_text: bool) -> list[int] | None:
    """Column widths that fit `width` without splitting a number or a word, or None."""
    natural = [max(c.cell_width, len(c.label)) for c in cols]
    if table_width(natural) <= width:
        return natural
    least = [max(c.word_width() if (wrap_text and c.wraps) else c.cell_width, _header_min(c.label)) for c in cols]
    if table_width(least) > width:
        return None
    slack = width - table_width(least)
    widths = list(least)
    # Give the spare room first to the columns that need least of it to stop wrapping.
    for index in sorted(range(len(cols)), key=lambda i: natural[i] - least[i]):
        extra = min(slack, natural[index] - widths[index])
        if extra == natural[index] - widths[index]:
            widths[index] += extra
            slack -= extra
    # Then to wrapped text, shared in proportion to what each column still lacks.
    wanting = [i for i, c in enumerate(cols) if wrap_text and c.wraps and widths[i] < natural[i]]
    lacking = sum(natural[i] - widths[i] for i in wanting)
    if wanting and slack:
        shares = {i: min(natural[i] - widths[i], slack * (natural[i] - widths[i]) // lacking) for i in wanting}
        for i, extra in shares.items():
            widths[i] += extra
            slack -= extra
        for i in sorted(wanting, key=lambda i: widths[i]):  # the remainder, narrowest first
            extra = min(slack, natural[i] - widths[i])
            widths[i] += extra
            slack -= extra
    # What is left goes to headers still broken, where a little more room saves a line.
    for index, col in enumerate(cols):
        lines = _wrap_header(col.label, widths[index]).count("\n")
        for extra in range(1, slack + 1):
            if _wrap_header(col.label, widths[index] + extra).count("\n") < lines:
                widths[index] += extra
                slack -= extra
                break
    return widths


def _ranking(keys: Sequence[str], cols: dict[str, _Column], priority: Sequence[str] | None) -> list[str]:
    """Columns from most to least important: the command's priority list, then the leading id
    (text) columns, then the rest left to right."""
    ranked = [k for k in (priority or ()) if k in cols]
    leading = []
    for key in keys:
        if cols[key].numeric:
            break
        leading.append(key)
    for key in leading + list(keys):
        if key not in ranked:
            ranked.append(key)
    return ranked


def to_table(
    rows: Sequence[Row],
    title: str | None = None,
    columns: Sequence[str] | None = None,
    labels: dict[str, str] | None = None,
    width: int | None = None,
    color: bool = False,
    priority: Sequence[str] | None = None,
    wide: bool = False,
    footnotes: Sequence[str] = (),
    wrap_first: bool = False,
    column_notes: dict[str, str] | None = None,
) -> str:
    """A rich table as text. `columns` picks and orders the keys shown (default: all).

    Numbers and identifiers are never split. When the table does not fit `width`, headers break
    between words, then the least important columns (`priority` lists the most important first)
    are left out and a footnote names them; a one-row result that does not fit becomes a vertical
    list of quantity and value. `wide` shows every column whatever the width. With `wrap_first`
    (a summary whose every column matters) text wraps inside its cells before any column is left
    out. Rows with `extrapolated` true get a `*` after their first cell and a footnote.
    `column_notes` (key -> text) become footnotes for the columns shown, never for those left out.
    """
    width = width or _terminal_width()
    keys = list(columns) if columns else columns_of(rows)
    labels = labels or {}
    notes = list(footnotes)
    cols: dict[str, _Column] = {}
    for key in keys:
        values = [r.get(key) for r in rows]
        present = [v for v in values if v is not None and v != "-"]
        numeric = bool(present) and all(_looks_numeric(v) for v in present)
        cols[key] = _Column(key, labels.get(key, key), format_column(key, values), numeric)
    marked = [bool(r.get("extrapolated")) for r in rows]
    if keys and any(marked):
        first = cols[keys[0]]
        first.cells = [c + "*" if m else c for c, m in zip(first.cells, marked)]
        notes.append(EXTRAPOLATED_NOTE)

    shown = list(keys)
    widths: list[int] | None = None
    if wide:
        widths = [max(cols[k].cell_width, len(cols[k].label)) for k in keys]
        width = max(width, table_width(widths))
    else:
        widths = _layout([cols[k] for k in keys], width, wrap_text=False)
        if widths is None and len(rows) == 1:
            return _vertical(cols, keys, title, width, color, notes)
        ranking = _ranking(keys, cols, priority)
        for wrap_text in ((True,) if wrap_first else (False, True)):
            if widths is not None:
                break
            shown = list(keys)
            dropping = [k for k in reversed(ranking[1:])]
            while widths is None:
                widths = _layout([cols[k] for k in shown], width, wrap_text)
                if widths is None:
                    if len(shown) <= 2 or not dropping:
                        break
                    shown.remove(dropping.pop(0))
        if widths is None:  # not even the most important columns fit: let them fold
            shown, widths = list(keys), None
    dropped = [k for k in keys if k not in shown]
    if dropped:
        notes.insert(0, f"left out at {width} columns: {', '.join(dropped)} (--wide or -f json shows them)")
    notes += [text for key, text in (column_notes or {}).items() if key in shown]

    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for index, key in enumerate(shown):
        col = cols[key]
        justify = "right" if col.numeric else "left"
        if widths is None:
            table.add_column(col.label, justify=justify, overflow="fold")
        else:
            w = widths[index]
            table.add_column(_wrap_header(col.label, w), justify=justify, width=w, no_wrap=not col.wraps, overflow="fold")
    for index in range(len(rows)):
        table.add_row(*(cols[k].cells[index] for k in shown))
    return _print(width, color, title, table, notes)


def _vertical(cols: dict[str, _Column], keys: Sequence[str], title: str | None, width: int, color: bool, notes: list[str]) -> str:
    """One row as a list: a line per quantity, its label and its value."""
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE, pad_edge=False, show_header=False)
    # The label may wrap, never the value column away: labels take at most half the width.
    label_width = max(len(cols[k].label or k) for k in keys) if keys else 0
    table.add_column("quantity", justify="left", overflow="fold", max_width=max(12, min(label_width, width // 2)))
    table.add_column("value", justify="left", overflow="fold")
    for key in keys:
        table.add_row(cols[key].label or key, cols[key].cells[0])
    return _print(width, color, title, table, notes)


def _print(width: int, color: bool, title: str | None, table: Any, notes: Sequence[str]) -> str:
    from rich.console import Console

    console = Console(
        width=width,
        no_color=not color,
        color_system="auto" if color else None,
        force_terminal=color,
        highlight=False,
        record=False,
        file=_NullFile(),
    )
    with console.capture() as capture:
        if title:
            # The title is its own line above the table, so a narrow table does not fold a long title.
            console.print(title, markup=False, highlight=False)
        console.print(table)
        for line in notes:
            console.print(line, markup=False, highlight=False)
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
    priority: Sequence[str] | None = None,
    wide: bool = False,
    footnotes: Sequence[str] = (),
    width: int | None = None,
    wrap_first: bool = False,
    column_notes: dict[str, str] | None = None,
) -> None:
    """Write rows to stdout (or `stream`) in `fmt`. The table shows `columns`; machine formats show every key.

    Counts and byte sizes are written as integers in every format (see `integral`); rows that say they
    already are (a `whole` attribute, as llmplan.commands' Rows do) are not scanned again."""
    rows = rows if getattr(rows, "whole", False) else integral(list(rows))
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
        text = to_table(rows, title=title, columns=columns, labels=labels, color=color, priority=priority, wide=wide,
                        footnotes=footnotes, width=width, wrap_first=wrap_first, column_notes=column_notes) if rows else ""
    else:
        raise InputError(f"unknown format {fmt!r}")
    stream.write(text)
    stream.flush()
