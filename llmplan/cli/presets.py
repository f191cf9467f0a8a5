"""`llmplan presets list|show`: the shipped (and user) presets of every kind (models, laws, GPUs, hyperparameter laws, engines, published runs, stacks)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from llmplan.cli.common import emit, output_format, say
from llmplan.cli.options import FormatOption, PresetsOption
from llmplan.commands.presets import ID_KEY

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
    from llmplan.commands.presets import kinds_of, presets_list

    fmt = output_format(fmt)
    if fmt == "table":  # a table per kind, each written as its kind is read
        for k in kinds_of(kind):
            rows = presets_list(kind=k, presets=presets)
            say(rows)
            emit(rows, fmt, title=f"Presets: {k}", columns=LIST_COLUMNS[k], priority=[ID_KEY.get(k, "id"), "params", "tokens"])
    else:
        rows = presets_list(kind=kind, presets=presets)
        say(rows)
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
    from llmplan.commands.presets import presets_show

    fmt = output_format(fmt)
    rows = presets_show(preset_id, kind=kind, presets=presets)
    say(rows)
    if fmt == "table":
        for row in rows.detail:
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
