"""Runs for `llmplan data mix RUNS`, read with the conventions of llmplan.io.runs (CSV, TSV, JSON lines
or JSON): one line per small run, its training mixture in columns `r_<domain>` (proportions; each row
is normalised to sum to 1) and its validation losses in columns `loss_<domain>` (or one `loss`).
"""

from __future__ import annotations


from llmplan.errors import InputError, quote
from llmplan.io.runs import read_small_text, _describe, _shown, detect_format, normalise, parse_records
from llmplan.records import record


@record(frozen=False)
class MixRuns:
    domains: list[str]
    targets: list[str]
    R: list[list[float]]
    losses: list[list[float]]  # losses[i][n]: validation domain i, run n


def _value(raw, zero_ok: bool) -> float | None:
    try:
        number = float(str(raw).strip()) if raw is not None and not isinstance(raw, bool) else None
    except ValueError:
        return None
    if number is None or number != number or number in (float("inf"), float("-inf")):
        return None
    return number if (number >= 0 if zero_ok else number > 0) else None


def read_mix_runs(path: str) -> MixRuns:
    text, name = read_small_text(path, 'mixtures and losses')
    header, records = parse_records(text, detect_format(text, name), name)
    shares = [h for h in header if normalise(h).startswith("r_")]
    losses = [h for h in header if normalise(h).startswith("loss_")] or [h for h in header if normalise(h) == "loss"]
    if len(shares) < 2:
        raise InputError(f"{name}: needs a proportion column per training domain, named r_<domain> (at least two); its columns are {_shown(header)}")
    if not losses:
        raise InputError(f"{name}: no loss column (loss_<domain> per validation domain, or loss); its columns are {_shown(header)}")
    runs = MixRuns([normalise(h)[2:] for h in shares], [normalise(h)[5:] or "loss" for h in losses], [], [[] for _ in losses])
    for line, entry in records:
        r = []
        for h in shares:
            v = _value(entry.get(h), zero_ok=True)
            if v is None:
                raise InputError(f"{name} line {line}, column {quote(h)}: {_describe(entry.get(h))} (a proportion, 0 or more)")
            r.append(v)
        total = sum(r)
        if total <= 0:
            raise InputError(f"{name} line {line}: the proportions sum to 0")
        runs.R.append([v / total for v in r])
        for i, h in enumerate(losses):
            v = _value(entry.get(h), zero_ok=False)
            if v is None:
                raise InputError(f"{name} line {line}, column {quote(h)}: {_describe(entry.get(h))}")
            runs.losses[i].append(v)
    if not runs.R:
        raise InputError(f"{name} holds no runs")
    return runs
