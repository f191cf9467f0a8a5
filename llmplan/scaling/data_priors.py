"""Published filtering points and classifier costs (presets/data_priors.toml): priors, not a law.

They are measured points (one model, one benchmark each) and llmplan only shows them: no published
law turns a keep fraction into a loss for language models, so none is blended into a prediction.
"""

from __future__ import annotations

import math
from typing import Any

from llmplan.errors import InputError

KINDS = ("filter", "classifier_cost")
EVIDENCE = ("primary", "secondary")
# field -> (type, required)
FIELDS: dict[str, tuple[type, bool]] = {
    "kind": (str, True), "gain": (str, True), "model": (str, True), "source": (str, True), "evidence": (str, True),
    "paper": (str, True), "keep": (float, False), "gpu": (str, False), "gpu_hours_per_trillion": (float, False),
}
# The seed notes' "quality replaces ~5x the data": no source supports it (see the reference notes, Sec. 1.8).
NO_MULTIPLIER_LAW = ("no published law turns a keep fraction into a loss or a data multiplier for language models "
                     "(the claim that quality replaces ~5x the data has no source): these are measured points")


def validate(entries: dict[str, Any], path: str) -> list[dict[str, Any]]:
    out = []
    for name, raw in entries.items():
        if not isinstance(raw, dict):
            raise InputError(f"{path}: [{name}] is not a table")
        unknown = set(raw) - set(FIELDS)
        if unknown:
            raise InputError(f"{path}: [{name}] has unknown field(s) {', '.join(sorted(unknown))}; known: {', '.join(FIELDS)}")
        row: dict[str, Any] = {"prior": name}
        for field, (kind, required) in FIELDS.items():
            value = raw.get(field)
            if value is None:
                if required:
                    raise InputError(f"{path}: [{name}] lacks {field!r}")
                row[field] = None
                continue
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, kind):
                raise InputError(f"{path}: [{name}] {field} must be a {kind.__name__}, not {value!r}")
            row[field] = value
        if row["kind"] not in KINDS:
            raise InputError(f"{path}: [{name}] kind {row['kind']!r} is not one of {', '.join(KINDS)}")
        if row["evidence"] not in EVIDENCE:
            raise InputError(f"{path}: [{name}] evidence {row['evidence']!r} is not one of {', '.join(EVIDENCE)}")
        if row["keep"] is not None and not (0.0 < row["keep"] <= 1.0):
            raise InputError(f"{path}: [{name}] keep {row['keep']!r} is not in (0, 1]")
        cost = row["gpu_hours_per_trillion"]
        if row["kind"] == "classifier_cost" and (cost is None or not (cost > 0 and math.isfinite(cost))):
            raise InputError(f"{path}: [{name}] a classifier_cost needs a positive gpu_hours_per_trillion")
        out.append(row)
    return out


def load() -> list[dict[str, Any]]:
    """The shipped priors, validated."""
    from llmplan.presets import _load_toml, builtin_dir

    path = builtin_dir() / "data_priors.toml"
    return validate(_load_toml(path), str(path))


def filter_priors() -> list[dict[str, Any]]:
    return [p for p in load() if p["kind"] == "filter"]


def classifier_cost() -> dict[str, Any]:
    """The shipped classifier cost (FineWeb-Edu's, 400 H100-hours per 1T tokens scored)."""
    return next(p for p in load() if p["kind"] == "classifier_cost")
