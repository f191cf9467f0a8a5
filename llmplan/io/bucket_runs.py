"""Runs per quality bucket for `llmplan data filter --buckets FILE`, read with the conventions of
llmplan.io.runs (CSV, TSV, JSON lines or JSON; column names matched case- and punctuation-blind):

    bucket, tokens (seen), unique_tokens (per epoch, the bucket's size), loss

one line per small run trained on one bucket for some number of epochs (Goyal et al. 2024's setting).
Buckets are ranked best first in the order they first appear.
"""

from __future__ import annotations

from dataclasses import field

from llmplan.errors import InputError, quote
from llmplan.io.runs import COLUMN_NAMES, read_small_text, _describe, _number, _shown, detect_format, normalise, parse_records
from llmplan.records import record

NAMES = {
    "bucket": ("bucket", "quality_bucket", "pool", "bucket_name"),
    "tokens": COLUMN_NAMES["tokens"] + ("tokens_seen", "seen", "samples_seen"),
    "unique_tokens": ("unique_tokens", "unique", "bucket_tokens", "samples_per_epoch", "tokens_per_epoch"),
    "loss": COLUMN_NAMES["loss"] + ("error",),
}


@record(frozen=False)
class BucketRuns:
    bucket: list[str] = field(default_factory=list)
    tokens: list[float] = field(default_factory=list)
    unique_tokens: list[float] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)


def read_bucket_runs(path: str) -> BucketRuns:
    text, name = read_small_text(path, 'runs per bucket')
    header, records = parse_records(text, detect_format(text, name), name)
    cols = {}
    for quantity, names in NAMES.items():
        found = [h for h in header if normalise(h) in names]
        if not found:
            raise InputError(f"{name}: no {quantity} column (looked for {', '.join(names[:3])}); its columns are {_shown(header)};"
                             " a bucket runs file has bucket, tokens, unique_tokens and loss")
        cols[quantity] = found[0]
    runs = BucketRuns()
    for line, entry in records:
        bucket = str(entry.get(cols["bucket"]) or "").strip()
        if not bucket:
            raise InputError(f"{name} line {line}, column {quote(cols['bucket'])}: is empty")
        values = []
        for quantity in ("tokens", "unique_tokens", "loss"):
            number = _number(entry.get(cols[quantity]))
            if number is None:
                raise InputError(f"{name} line {line}, column {quote(cols[quantity])}: {_describe(entry.get(cols[quantity]))}")
            values.append(number)
        runs.bucket.append(bucket)
        runs.tokens.append(values[0])
        runs.unique_tokens.append(values[1])
        runs.loss.append(values[2])
    if not runs.bucket:
        raise InputError(f"{name} holds no runs")
    return runs
