"""`llmplan dtypes` as a function: the number formats that decide memory."""

from __future__ import annotations

from typing import Any

from llmplan.commands import args
from llmplan.commands.result import Rows, command


@command
def dtypes(*, params: Any = None) -> Rows:
    """The number formats (`llmplan dtypes`): bits, layout, range, precision; with `params` (a count
    such as "7B" or 7e9) the bytes to store that many parameters in each format (no scales).
    `detail` is the parameter count (None: not given).

    Example: llmplan.dtypes(params="7B")[0]["weights_bytes"]
    """
    from llmplan.dtypes import DTYPES
    from llmplan.units import parse_count

    params = args.text(params)
    count = parse_count(params, "a parameter count") if params is not None else None
    rows = []
    for dtype in DTYPES:
        row = dtype.row()
        if count is not None:
            row["params"] = count
            row["weights_bytes"] = count * dtype.bytes
        rows.append(row)
    return Rows(rows, detail=count)
