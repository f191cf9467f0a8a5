"""`llmplan dtypes`: the number formats that decide memory."""

from __future__ import annotations

import typer

from llmplan.cli import options
from llmplan.cli.common import emit, output_format, say
from llmplan.cli.options import FormatOption

app = typer.Typer()

ParamsOption = options.params_option("Add the bytes to store this many parameters in each format (e.g. 7B).", short=False)


@app.command(help="""The number formats that decide memory: bits, layout, range, precision.

Examples:

  llmplan dtypes

  llmplan dtypes --params 7B        # bytes to store 7B parameters in each format

  llmplan dtypes -f json
""")
def dtypes(
    params: ParamsOption = None,
    fmt: FormatOption = None,
) -> None:
    from llmplan.commands.dtypes import dtypes as compute
    from llmplan.units import format_count

    fmt = output_format(fmt)
    rows = compute(params=params)
    say(rows)
    count = rows.detail
    columns = ["dtype", "bits", "bytes_per_value", "sign_bits", "exponent_bits", "fraction_bits", "max", "min_normal", "epsilon"]
    if count is not None:
        columns.append("weights_bytes")
    title = "Number formats" + (f" (storing {format_count(count)} parameters, no scales)" if count is not None else "")
    priority = ["dtype", "bits", "bytes_per_value", "weights_bytes", "max", "epsilon", "min_normal", "exponent_bits", "fraction_bits", "sign_bits"]
    emit(rows, fmt, title=title, columns=columns, priority=priority, labels={"bytes_per_value": "bytes", "weights_bytes": "weights", "exponent_bits": "exp", "fraction_bits": "frac", "sign_bits": "sign"})
