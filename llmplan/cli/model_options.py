"""Models for the commands: where the options meet llmplan.model.source.

The options are declared once in llmplan.cli.options (the MODEL_SOURCE and SHAPE groups, whose
parameter names are llmplan.model.source.SHAPE_FLAGS); a command takes them as groups and calls
`resolve_model` (one model) or `resolve_models` (arch: any number; '-' among the preset ids reads
ids from stdin). Example:

    @options.grouped(source=options.MODEL_SOURCE, shape_flags=options.SHAPE)
    def command(source: options.Flags = None, shape_flags: options.Flags = None, ...):
        model = mo.resolve_model(**source, **shape_flags, presets=presets, command="llmplan X")
        for line in model.notes: note(line)
"""

from __future__ import annotations

from typing import Any

from llmplan.model.source import Model, resolve_model, shape_flags  # noqa: F401 (the commands reach them as mo.*)


def resolve_models(*, preset: Any = None, **given: Any) -> list[Model]:
    """llmplan.model.source.resolve_models, with '-' among the preset ids read from stdin (one id a line)."""
    from llmplan.cli.common import expand
    from llmplan.model import source

    ids = expand(list(preset) if isinstance(preset, (list, tuple)) else [preset], str) if preset else preset
    return source.resolve_models(preset=ids, **given)
