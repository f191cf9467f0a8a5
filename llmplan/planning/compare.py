"""`llmplan compare`'s rows: trained models against a law's compute-optimal split of their compute
(scaling), with the MFU their published GPU-hours imply and the MFU the throughput model predicts
for their published run (systems).
"""

from __future__ import annotations

from typing import Any, Sequence

from llmplan.errors import InputError


def pick_models(catalog: Any, names: Sequence[str] | None) -> list[Any]:
    """The model presets to compare: those named (each must have training tokens), or by default every
    decoder with params and tokens (the laws were fitted on causal decoders; encoders and
    encoder-decoders only on request)."""
    if names is not None:
        picked = [catalog.get("models", m) for m in names]
        for preset in picked:
            if preset.get("tokens") is None:
                raise InputError(f"model {preset.id!r} has no training tokens in the presets, so it cannot be compared")
        return picked
    return [p for p in catalog.all("models") if p.get("params") and p.get("tokens") and p.get("architecture") == "decoder"]


def compare_rows(law: Any, picked: Sequence[Any], catalog: Any, stack: Any = None) -> list[dict[str, Any]]:
    """One row per model: llmplan.scaling.optimal.compare_row at its exact count, its nominal count,
    the published run's fields (implied MFU) and the throughput model's predicted MFU under `stack`
    (llmplan.systems.stack.Stack; None: the default)."""
    from llmplan.systems.mfu import predicted_mfu
    from llmplan.presets import model_params
    from llmplan.rows import checked, out_of_range
    from llmplan.scaling.optimal import compare_row
    from llmplan.systems.budget import published_run_fields

    rows = []
    with out_of_range():
        for preset in picked:
            N, nominal = model_params(preset)  # the exact count where the preset has it
            row = compare_row(law, preset.id, preset.name, N, preset["tokens"])
            row["nominal_params"] = nominal
            row.update(published_run_fields(preset, row["flops"], catalog))
            row["predicted_mfu"] = predicted_mfu(preset, catalog, stack) if row["implied_mfu"] is not None else None
            rows.append(row)
    return checked(rows)
