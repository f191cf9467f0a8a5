"""`llmplan presets list|show`: the shipped (and user) presets of every kind (models, laws, GPUs, hyperparameter laws, engines, published runs, stacks)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from llmplan.cli.common import catalog, emit, output_format, output_key
from llmplan.cli.options import FormatOption, PresetsOption
from llmplan.errors import InputError

app = typer.Typer(help="List and show presets: models, laws, GPUs, hyperparameter laws, serving engines, published runs and training stacks.", no_args_is_help=True)

KindOption = Annotated[Optional[str], typer.Option("--kind", "-k", help="Which presets: models, laws, gpus, hparams, engines, runs or stacks (default: all).", show_default=False)]

# Columns of `presets list` per kind, for the table; machine formats carry every field.
LIST_COLUMNS = {
    "models": ["model", "name", "architecture", "objective", "params", "tokens", "tokens_per_param"],
    "laws": ["law", "name", "form", "convention"],
    "gpus": ["gpu", "name", "memory_bytes"],
    "hparams": ["id", "name", "convention", "fitted_range"],
    "engines": ["id", "name", "version", "batching", "decode_attention"],
    "runs": ["id", "name", "flops", "max_batch_tokens", "learning_rate"],
    "stacks": ["id", "name", "attention", "elementwise", "mixed_precision"],
}
# The key holding a preset's id, the same as every other command's: model, law, gpu.
ID_KEY = {"models": "model", "laws": "law", "gpus": "gpu"}


def model_row(preset) -> dict:
    row = {"kind": "models", "model": preset.id, **preset.data}
    params, tokens = preset.get("params"), preset.get("tokens")
    row["tokens_per_param"] = tokens / params if params and tokens else None
    return row


def _row(preset) -> dict:
    if preset.kind == "models":
        return model_row(preset)
    data = preset.data
    if preset.kind == "gpus":  # in base units, as `llmplan gpus` names them
        data = {output_key(k): v for k, v in data.items()}
    return {"kind": preset.kind, ID_KEY.get(preset.kind, "id"): preset.id, **data}


def _kind(kind: str | None) -> list[str]:
    from llmplan.presets import KINDS

    if kind is None:
        return list(KINDS)
    key = kind.strip().lower()
    aliases = {"model": "models", "law": "laws", "gpu": "gpus", "hparam": "hparams", "engine": "engines", "run": "runs", "stack": "stacks"}
    key = aliases.get(key, key)
    if key not in KINDS:
        raise InputError(f"--kind {kind!r} is not one of {', '.join(KINDS)}")
    return [key]


@app.command("list", help="""List presets, one row each.

Examples:

  llmplan presets list

  llmplan presets list --kind models -f json
""")
def list_presets(
    kind: KindOption = None,
    fmt: FormatOption = None,
    presets: PresetsOption = None,
) -> None:
    fmt = output_format(fmt)
    kinds = _kind(kind)
    cat = catalog(presets)
    for index, k in enumerate(kinds):
        rows = [_row(p) for p in cat.all(k)]
        if fmt == "table":
            emit(rows, fmt, title=f"Presets: {k}", columns=LIST_COLUMNS[k], priority=[ID_KEY.get(k, "id"), "params", "tokens"])
        elif len(kinds) == 1:
            emit(rows, fmt)
    if fmt != "table" and len(kinds) > 1:
        # One stream of rows across kinds: the common keys first, each row with its kind.
        rows = [{"kind": p.kind, "id": p.id, "name": p.name, "source": p.get("source")} for k in kinds for p in cat.all(k)]
        emit(rows, fmt)


@app.command("show", help="""Show every field of one preset (looked up by id or alias).

Examples:

  llmplan presets show llama-2-7b

  llmplan presets show chinchilla --kind laws -f json
""")
def show(
    preset_id: Annotated[str, typer.Argument(metavar="ID", help="A preset id or alias.")],
    kind: KindOption = None,
    fmt: FormatOption = None,
    presets: PresetsOption = None,
) -> None:
    fmt = output_format(fmt)
    cat = catalog(presets)
    kinds = _kind(kind)
    found = [p for k in kinds if (p := cat.find(k, preset_id)) is not None]
    if not found:
        kind_for_hint = kinds[0] if len(kinds) == 1 else "models"
        if len(kinds) > 1:
            # Suggest across all kinds.
            import difflib

            names = [i for k in kinds for i in cat.ids(k)]
            close = difflib.get_close_matches(preset_id.lower(), names, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else "; see 'llmplan presets list'"
            raise InputError(f"unknown preset {preset_id!r}{hint}")
        raise InputError(cat.unknown_message(kind_for_hint, preset_id))
    rows = []
    for preset in found:
        row = _row(preset)
        row.update(derived_fields(preset))
        rows.append(row)
    if fmt == "table":
        for row in rows:
            pairs = [{"field": k, "value": v} for k, v in row.items()]

            emit([{"field": p["field"], "value": _show_value(p["field"], p["value"])} for p in pairs], fmt, title=f"{row['kind']}: {row[ID_KEY.get(row['kind'], 'id')]}")
    else:
        emit(rows, fmt)


def _show_value(key: str, value) -> str:
    """Exact integers for counts (with the humanised form beside them); the rest humanised."""
    from llmplan.io.render import humanize

    text = humanize(key, value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 10_000 and text != f"{value:,}":
        return f"{value:,} ({text})"
    return text


def derived_fields(preset) -> dict:
    """Counts derived from a model's shape, shown next to the published ones (see llmplan.model.arch)."""
    if preset.kind != "models":
        return {}
    try:
        from llmplan.model import arch
    except ModuleNotFoundError:
        return {}
    derive = getattr(arch, "derived_counts", None)
    return derive(preset) if derive else {}
