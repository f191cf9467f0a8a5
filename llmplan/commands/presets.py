"""`llmplan presets list|show` as functions: the shipped (and user) presets of every kind (models,
laws, GPUs, hyperparameter laws, engines, published runs, stacks).

`presets("list", kind="models")` is `list(kind="models")`, `presets("show", "llama-2-7b")` is
`show("llama-2-7b")`: the dispatcher the Python API exposes (llmplan.api.presets)."""

from __future__ import annotations

import builtins
from typing import Any

from llmplan.commands.result import Rows, command
from llmplan.errors import InputError

ACTIONS = ("list", "show")

# The key holding a preset's id, the same as every other command's: model, law, gpu.
ID_KEY = {"models": "model", "laws": "law", "gpus": "gpu"}


def output_key(field: str) -> str:
    """A gpus.toml field as machine output names it, in base units: peak_bf16 ->
    peak_bf16_flops_per_second, sparse_fp8 -> sparse_fp8_flops_per_second, bandwidth ->
    bandwidth_bytes_per_second (see CHANGELOG.md)."""
    if field == "bandwidth" or field.endswith("_bandwidth"):  # HBM, intra- and inter-node links
        return f"{field}_bytes_per_second"
    if field.startswith(("peak_", "sparse_")) and not field.endswith("_per_second"):
        return f"{field}_flops_per_second"
    return field


def model_row(preset: Any) -> dict:
    row = {"kind": "models", "model": preset.id, **preset.data}
    params, tokens = preset.get("params"), preset.get("tokens")
    row["tokens_per_param"] = tokens / params if params and tokens else None
    return row


def preset_row(preset: Any) -> dict:
    """Every field of a preset, keyed as the other commands key them (its id: model, law, gpu or id)."""
    if preset.kind == "models":
        return model_row(preset)
    data = preset.data
    if preset.kind == "gpus":  # in base units, as `llmplan gpus` names them
        data = {output_key(k): v for k, v in data.items()}
    return {"kind": preset.kind, ID_KEY.get(preset.kind, "id"): preset.id, **data}


def kinds_of(kind: Any) -> builtins.list[str]:
    """--kind as the kinds it names (None: all of them), or bad input naming the kinds."""
    from llmplan.presets import KINDS

    if kind is None:
        return builtins.list(KINDS)
    key = str(kind).strip().lower()
    aliases = {"model": "models", "law": "laws", "gpu": "gpus", "hparam": "hparams", "engine": "engines", "run": "runs", "stack": "stacks"}
    key = aliases.get(key, key)
    if key not in KINDS:
        raise InputError(f"--kind {kind!r} is not one of {', '.join(KINDS)}")
    return [key]


@command
def presets_list(*, kind: Any = None, presets: Any = None) -> Rows:
    """The presets, one row each (`llmplan presets list`): of one `kind` (models, laws, gpus, hparams,
    engines, runs, stacks), every field; of all kinds (kind=None), kind, id, name and source.

    Example: [r["model"] for r in llmplan.api.presets("list", kind="models")]
    """
    from llmplan.presets import catalog

    kinds = kinds_of(kind)
    cat = catalog(presets)
    full = [[preset_row(p) for p in cat.all(k)] for k in kinds]
    if len(kinds) == 1:
        return Rows(full[0])
    # One stream of rows across kinds: the common keys first, each row with its kind.
    return Rows([{"kind": p.kind, "id": p.id, "name": p.name, "source": p.get("source")} for k in kinds for p in cat.all(k)])


@command
def presets_show(preset_id: Any = None, *, kind: Any = None, presets: Any = None) -> Rows:
    """Every field of one preset, looked up by id or alias (`llmplan presets show ID`), with the
    counts derived from a model's shape; one row per kind that has the id (`kind` narrows it).
    `detail`: the rows with each field as the preset holds it (counts not yet made whole: the table).

    Example: llmplan.api.presets("show", "llama-3.1-8b")[0]["params"]
    """
    from llmplan.presets import catalog

    if preset_id is None:
        raise InputError("Missing argument 'ID'. (see 'llmplan presets show --help')")
    preset_id = str(preset_id)
    cat = catalog(presets)
    kinds = kinds_of(kind)
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
        row = preset_row(preset)
        row.update(derived_fields(preset))
        rows.append(row)
    return Rows(rows, detail=rows)


def derived_fields(preset: Any) -> dict:
    """Counts derived from a model's shape, shown next to the published ones (see llmplan.model.arch)."""
    if preset.kind != "models":
        return {}
    try:
        from llmplan.model import arch
    except ModuleNotFoundError:
        return {}
    derive = getattr(arch, "derived_counts", None)
    return derive(preset) if derive else {}


# The subcommands by their command-line names: llmplan.commands.presets.list(...), .show(...).
list = presets_list
show = presets_show


def presets(action: str = "list", *args: Any, **options: Any) -> Rows:
    """The presets (`llmplan presets list|show ...`): models, laws, GPUs and more. The action is the
    subcommand; the rest are its arguments and options ('-' -> '_').

    Example: presets("list", kind="models"); presets("show", "llama-3.1-8b")
    """
    if action not in ACTIONS:
        raise InputError(f"no command 'llmplan presets {action}'; the actions are list and show")
    return {"list": presets_list, "show": presets_show}[action](*args, **options)
