"""Models for the commands: where the options meet llmplan.model.source.

The options are declared once in llmplan.cli.options (the MODEL_SOURCE and SHAPE groups, whose
parameter names are llmplan.model.source.SHAPE_FLAGS); a command takes them as groups and calls
`resolve_model` (one model; arch's any number: llmplan.commands.arch, '-' among the preset ids read
from stdin by the command line). Example:

    @options.grouped(source=options.MODEL_SOURCE, shape_flags=options.SHAPE)
    def command(source: options.Flags = None, shape_flags: options.Flags = None, ...):
        model = mo.resolve_model(**source, **shape_flags, presets=presets, command="llmplan X")
        for line in model.notes: note(line)
"""

from __future__ import annotations

from llmplan.model.source import Model, resolve_model, shape_flags  # noqa: F401 (the commands reach them as mo.*)
