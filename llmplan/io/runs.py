"""Reading a user's training runs (CSV, TSV, JSON-lines, JSON or stdin) for `llmplan fit`.

A run is (N parameters, D tokens, final loss L). Columns are found by common names or named
explicitly; D may come from a compute column as D = C / (6N) (Hoffmann et al. 2022, C ≈ 6ND).
Every value must be a finite positive number: a bad row is an InputError naming its line and
column, unless the caller asks to skip bad rows (then they are counted). No numpy here.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import field
from pathlib import Path
from typing import Any, Iterable, Sequence

from llmplan.errors import InputError, cut, quote
from llmplan.records import record

# Bounds on what a runs file may hold: beyond them the input is not a set of training runs.
MAX_RUNS_CHARS = 256 * 2**20  # 256 MiB of text
MAX_LOSS = 1_000.0  # nats per token: cross-entropy of a language model is ~ln(vocab) ≈ 12 at most at init
MAX_PARAMS = 1e18
MAX_TOKENS = 1e21
LIMITS = {"params": MAX_PARAMS, "tokens": MAX_TOKENS, "flops": 6 * MAX_PARAMS * MAX_TOKENS, "loss": MAX_LOSS}

# Normalised column names (lower case, non-alphanumerics -> "_") recognised for each quantity.
COLUMN_NAMES: dict[str, tuple[str, ...]] = {
    "params": ("params", "n", "model_size", "parameters", "num_params", "n_params", "nparams", "param_count", "model_params"),
    "tokens": ("tokens", "d", "num_tokens", "n_tokens", "training_tokens", "train_tokens", "data_tokens"),
    "flops": ("flops", "compute", "training_flop", "training_flops", "c", "flop", "train_flops", "training_compute"),
    "loss": ("loss", "final_loss", "l", "eval_loss", "val_loss", "validation_loss"),
}
OPTION = {"params": "--params-col", "tokens": "--tokens-col", "flops": "--flops-col", "loss": "--loss-col"}


@record(frozen=False)
class Runs:
    """Validated runs: parallel lists N, D, L (and C = 6ND when D came from compute), with provenance."""

    N: list[float]
    D: list[float]
    L: list[float]
    lines: list[int]  # line (or JSON record) number of each run in the source
    source: str
    columns: dict[str, str]  # quantity -> column name used
    skipped: list[str] = field(default_factory=list)  # descriptions of skipped bad rows
    filters: list[str] = field(default_factory=list)  # descriptions of filters applied, in order

    def __len__(self) -> int:
        return len(self.N)

    @property
    def C(self) -> list[float]:
        # Training compute C ≈ 6ND (Hoffmann et al. 2022 §3 / Kaplan et al. 2020 §2.1).
        return [6.0 * n * d for n, d in zip(self.N, self.D)]

    def subset(self, keep: Sequence[int], description: str | None = None) -> "Runs":
        runs = Runs(
            [self.N[i] for i in keep], [self.D[i] for i in keep], [self.L[i] for i in keep],
            [self.lines[i] for i in keep], self.source, dict(self.columns), list(self.skipped), list(self.filters),
        )
        if description:
            runs.filters.append(description)
        return runs



def _csv_rows(reader: Any, source: str) -> Iterable[list[str]]:
    """The reader's rows; csv's own errors (a field over 131,072 characters, a NUL byte) as InputError."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise InputError(f"{source} line {reader.line_num + 1}: not readable as CSV/TSV ({cut(str(error))}); fields must be under {csv.field_size_limit():,} characters") from None
        yield row


def _refuse_duplicates(header: list[str], source: str) -> None:
    seen: set[str] = set()
    for name in header:
        if name in seen and name:
            raise InputError(f"{source}: column {quote(name)} appears more than once; rename one so that each column has one meaning")
        seen.add(name)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"key {quote(key)} appears more than once in one object")
        out[key] = value
    return out


def _json(text: str, source: str, where: str) -> Any:
    """json.loads, with every way it can fail (syntax, nesting depth, 4,300-digit integers) as InputError."""
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as error:
        extra = "; JSON-lines needs one object per line" if where else ""
        raise InputError(f"{source}{where} is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg}){extra}") from None
    except RecursionError:
        raise InputError(f"{source}{where}: JSON nested too deeply; a runs file holds a flat list of objects") from None
    except ValueError as error:  # an integer of more than 4,300 digits, or a repeated key
        if "digits" in str(error):
            raise InputError(f"{source}{where}: an integer of more than 4,300 digits; no run has that many parameters or tokens") from None
        raise InputError(f"{source}{where}: {cut(str(error))}") from None


def _extend_header(header: list[str], record: dict) -> None:
    """Add a JSON record's keys to the column list, in the order they first appear."""
    header.extend(key for key in record if key not in header)

def normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


def detect_format(text: str, name: str) -> str:
    """csv | tsv | jsonl | json, from the file name's extension, else from the content."""
    suffix = Path(name).suffix.lower()
    if suffix in (".csv",):
        return "csv"
    if suffix in (".tsv", ".tab"):
        return "tsv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    stripped = text.lstrip()
    if stripped.startswith("["):
        return "json"
    if stripped.startswith("{"):
        try:  # one JSON object holding the list, {"runs": [...]}
            whole = json.loads(text)
        except json.JSONDecodeError:
            return "jsonl"
        return "json" if isinstance(whole, dict) and any(isinstance(whole.get(k), list) for k in ("runs", "data", "records")) else "jsonl"
    first = stripped.splitlines()[0] if stripped else ""
    return "tsv" if "\t" in first else "csv"


def parse_records(text: str, fmt: str, source: str) -> tuple[list[str], list[tuple[int, dict[str, Any]]]]:
    """(column names, [(line number, record)]) from the text in the given format."""
    records: list[tuple[int, dict[str, Any]]] = []
    if fmt in ("csv", "tsv"):
        reader = csv.reader(io.StringIO(text), delimiter="\t" if fmt == "tsv" else ",")
        header: list[str] | None = None
        for row in _csv_rows(reader, source):
            line = reader.line_num
            if header is None:
                if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
                    continue
                header = [c.strip() for c in row]
                _refuse_duplicates(header, source)
                continue
            if not row or all(not c.strip() for c in row):
                continue  # blank line between records
            if row[0].lstrip().startswith("#"):
                continue
            if len(row) != len(header):
                records.append((line, {"__width__": f"{len(row)} fields where the header has {len(header)}"}))
                continue
            records.append((line, dict(zip(header, row))))
        if header is None:
            raise InputError(f"{source} has no header row; the first line must name the columns (e.g. params,tokens,loss)")
        return header, records
    if fmt == "json":
        data = _json(text, source, "")
        if isinstance(data, dict):
            for key in ("runs", "data", "records"):
                if isinstance(data.get(key), list):
                    data = data[key]
                    break
        if not isinstance(data, list):
            raise InputError(f"{source} must hold a JSON array of objects (one per run), or {{\"runs\": [...]}}")
        header: list[str] = []
        for i, item in enumerate(data, 1):
            if not isinstance(item, dict):
                raise InputError(f"{source} record {i} is not a JSON object with the run's columns")
            _extend_header(header, item)
            records.append((i, item))
        return header, records
    # JSON lines
    header = []
    for line_no, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        item = _json(line, source, f" line {line_no}")
        if not isinstance(item, dict):
            raise InputError(f"{source} line {line_no} is not a JSON object with the run's columns")
        _extend_header(header, item)
        records.append((line_no, item))
    return header, records


def _pick(quantity: str, header: list[str], explicit: str | None, source: str) -> str | None:
    if explicit is not None:
        if explicit in header:
            return explicit
        by_norm = {normalise(h): h for h in header}
        if normalise(explicit) in by_norm:
            return by_norm[normalise(explicit)]
        raise InputError(f"{OPTION[quantity]} {quote(explicit)}: {source} has no such column; its columns are {_shown(header)}")
    found = [h for h in header if normalise(h) in COLUMN_NAMES[quantity]]
    if len(found) > 1:
        raise InputError(f"{source}: several columns could be the {quantity} ({', '.join(found)}); pick one with {OPTION[quantity]}")
    return found[0] if found else None


def _shown(header: list[str], limit: int = 100) -> str:
    """The column names for a message, cut to about `limit` characters."""
    text = ", ".join(header) if header else "none"
    return text if len(text) <= limit else text[:limit] + f"... ({len(header)} columns)"


def _number(value: Any) -> float | None:
    """A finite positive float, or None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip().replace("_", "")
        if not text:
            return None
        try:
            number = float(text)
        except ValueError:
            return None
    else:
        return None
    if not math.isfinite(number) or number <= 0:
        return None
    return number


def _describe(value: Any) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        return "is empty"
    return f"{quote(value)} is not a finite positive number"


def read_runs(
    text: str,
    source: str = "<stdin>",
    *,
    params_col: str | None = None,
    tokens_col: str | None = None,
    flops_col: str | None = None,
    loss_col: str | None = None,
    skip_bad_rows: bool = False,
    fmt: str | None = None,
) -> Runs:
    """Parse and validate runs from text (see the module doc). `source` names the file in messages."""
    fmt = fmt or detect_format(text, source)
    header, records = parse_records(text, fmt, source)
    cols = {
        "params": _pick("params", header, params_col, source),
        "tokens": _pick("tokens", header, tokens_col, source),
        "flops": _pick("flops", header, flops_col, source),
        "loss": _pick("loss", header, loss_col, source),
    }
    shown = _shown(header)
    if cols["params"] is None:
        raise InputError(f"{source}: no parameter-count column (looked for {', '.join(COLUMN_NAMES['params'][:4])}, ...); its columns are {shown}; name one with --params-col")
    if cols["loss"] is None:
        raise InputError(f"{source}: no loss column (looked for loss, final_loss, ...); its columns are {shown}; name one with --loss-col")
    if cols["tokens"] is None and cols["flops"] is None:
        raise InputError(f"{source}: needs a tokens column or a compute column (D = C/(6N)); its columns are {shown}; name one with --tokens-col or --flops-col")
    use_tokens = cols["tokens"] is not None and (flops_col is None or tokens_col is not None)
    used = {"params": cols["params"], "loss": cols["loss"]}
    if use_tokens:
        used["tokens"] = cols["tokens"]
    else:
        used["flops"] = cols["flops"]
    runs = Runs([], [], [], [], source, used)
    where = "record" if fmt == "json" else "line"
    for line, entry in records:
        if "__width__" in entry:
            problem = f"{source} {where} {line}: {entry['__width__']}"
        else:
            problem = None
            values: dict[str, float] = {}
            for quantity, column in used.items():
                raw = entry.get(column)
                number = _number(raw)
                if number is None:
                    problem = f"{source} {where} {line}, column {quote(column)}: {_describe(raw)}"
                    break
                if number > LIMITS[quantity]:
                    problem = f"{source} {where} {line}, column {quote(column)}: {number:.4g} is beyond any training run (at most {LIMITS[quantity]:.0e}{' nats per token; fit losses, not perplexities' if quantity == 'loss' else ''})"
                    break
                values[quantity] = number
        if problem is not None:
            if skip_bad_rows:
                runs.skipped.append(problem)
                continue
            raise InputError(f"{problem}; fix the row or pass --skip-bad-rows")
        n = values["params"]
        d = values["tokens"] if use_tokens else values["flops"] / (6.0 * n)  # C ≈ 6ND
        runs.N.append(n)
        runs.D.append(d)
        runs.L.append(values["loss"])
        runs.lines.append(line)
    return runs


def read_small_text(path: str, what: str) -> tuple[str, str]:
    """(text, file name) of a runs file of another shape (data filter --buckets, data mix), at most
    MAX_RUNS_CHARS; one InputError naming `what` the file should hold when it cannot be read."""
    file = Path(path)
    try:
        ok = file.is_file() and file.stat().st_size <= MAX_RUNS_CHARS
        text = file.read_text(encoding="utf-8-sig") if ok else None
    except (OSError, ValueError, UnicodeDecodeError):
        text = None
    if text is None:
        raise InputError(f"cannot read a runs file {quote(path)}; give a CSV, TSV, JSON-lines or JSON file of {what}")
    return text, file.name


def read_runs_file(path: str, stdin_text: str | None = None, **options: Any) -> Runs:
    """Read runs from a path, or from `stdin_text` when path is '-'."""
    if path == "-":
        if stdin_text is None:
            raise InputError("RUNS is '-' but there is no stdin to read")
        return read_runs(stdin_text, "<stdin>", **options)
    file = Path(path)
    try:
        exists = file.is_file()
    except (OSError, ValueError):  # a name too long for the system, or otherwise unusable
        exists = False
    if not exists:
        raise InputError(f"no runs file {quote(path)}; give a CSV, TSV, JSON-lines or JSON file, or '-' for stdin")
    try:
        if file.stat().st_size > MAX_RUNS_CHARS:
            raise InputError(f"{path} is larger than {MAX_RUNS_CHARS // 2**20} MiB; a runs file holds one line per training run")
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{path} is not UTF-8 text; give a CSV, TSV, JSON-lines or JSON file") from None
    except OSError as error:
        raise InputError(f"cannot read {path}: {error.strerror}") from None
    return read_runs(text, file.name, **options)


# ----------------------------------------------------------------------------- filters

def drop_highest_loss(runs: Runs, k: int) -> Runs:
    """Keep runs whose loss is below the k-th highest (the Epoch notebook's `losses < sorted(losses)[-k]`).

    With ties at the threshold more than k runs go; the description says how many.
    """
    if k <= 0:
        return runs
    if k >= len(runs):
        raise InputError(f"--drop-highest-loss {k} would drop all {len(runs)} runs")
    threshold = sorted(runs.L)[-k]
    keep = [i for i, l in enumerate(runs.L) if l < threshold]
    return runs.subset(keep, f"dropped the {len(runs) - len(keep)} highest-loss runs (loss >= {threshold:.6g})")


def filter_flops(runs: Runs, min_flops: float | None, max_flops: float | None) -> Runs:
    """Keep runs with min_flops <= C = 6ND <= max_flops."""
    out = runs
    if min_flops is not None:
        keep = [i for i, c in enumerate(out.C) if c >= min_flops]
        out = out.subset(keep, f"dropped {len(out) - len(keep)} runs below {min_flops:.4g} FLOPs")
    if max_flops is not None:
        keep = [i for i, c in enumerate(out.C) if c <= max_flops]
        out = out.subset(keep, f"dropped {len(out) - len(keep)} runs above {max_flops:.4g} FLOPs")
    return out
