"""`llmplan dtypes`: the number formats that decide memory."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from llmplan.cli import options
from llmplan.cli.common import emit, output_format
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
    from llmplan.dtypes import DTYPES
    from llmplan.units import format_count, parse_count

    fmt = output_format(fmt)
    count = parse_count(params, "a parameter count") if params is not None else None
    rows = []
    for dtype in DTYPES:
        row = dtype.row()
        if count is not None:
            row["params"] = count
            row["weights_bytes"] = count * dtype.bytes
        rows.append(row)
    columns = ["dtype", "bits", "bytes_per_value", "sign_bits", "exponent_bits", "fraction_bits", "max", "min_normal", "epsilon"]
    if count is not None:
        columns.append("weights_bytes")
    title = "Number formats" + (f" (storing {format_count(count)} parameters, no scales)" if count is not None else "")
    priority = ["dtype", "bits", "bytes_per_value", "weights_bytes", "max", "epsilon", "min_normal", "exponent_bits", "fraction_bits", "sign_bits"]
    emit(rows, fmt, title=title, columns=columns, priority=priority, labels={"bytes_per_value": "bytes", "weights_bytes": "weights", "exponent_bits": "exp", "fraction_bits": "frac", "sign_bits": "sign"})
