"""`llmplan loss`: the loss a scaling law predicts for N parameters trained on D tokens."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from llmplan.cli import options
from llmplan.cli.common import catalog, emit, output_format, stdin_lines, warn_extrapolations, note_loss_datasets

app = typer.Typer()

ParamsOption = options.params_option("Parameters (e.g. 70B); '-' reads 'PARAMS TOKENS' pairs from stdin, one per line.")
LawOption = options.law_option("Scaling law: preset id (default epoch-2024), a TOML file, or 'all' (the laws that predict loss).")
UniqueTokensOption = options.unique_tokens_option("Unique tokens behind the D training tokens (e.g. 25B): repeated epochs count as less data, under the data-constrained law muennighoff-2023.")


def parse_pair(line: str) -> tuple[float, float]:
    """'70B 1.4T' (or comma/tab separated) -> (N, D)."""
    from llmplan.errors import InputError
    from llmplan.units import parse_count

    parts = line.split()  # whitespace first: '7,000,000,000 1.4T' keeps its digit grouping
    if len(parts) != 2:
        parts = [p.strip() for p in line.split(",")]
    if len(parts) != 2:
        from llmplan.errors import quote

        raise InputError(f"{quote(line)} is not a 'PARAMS TOKENS' pair; write one per line, e.g. '70B 1.4T'")
    return parse_count(parts[0], "a parameter count"), parse_count(parts[1], "a token count")


@app.command(help="""The loss a scaling law predicts for N parameters trained on D tokens, and why.

size_share and data_share split the reducible loss (above the irreducible E) into the part a bigger
model would remove (A/N^alpha) and the part more data would remove (B/D^beta). For kaplan-2020 they
split the two terms inside its Eq. 1.5 bracket. Laws that predict no loss are refused.

Examples:

  llmplan loss --params 70B --tokens 1.4T

  llmplan loss --params 175B --tokens 300B --law epoch-2024

  printf '70B 1.4T\\n280B 300B\\n' | llmplan loss --params - -f csv

  llmplan loss --params 6.34B --tokens 242B --unique-tokens 25B
""")
def loss(
    params: ParamsOption = None,
    tokens: options.TokensOption = None,
    law: LawOption = None,
    unique_tokens: UniqueTokensOption = None,
    fmt: options.FormatOption = None,
    presets: options.PresetsOption = None,
) -> None:
    from llmplan.scaling.laws import resolve_laws
    from llmplan.errors import InputError
    from llmplan.scaling.optimal import loss_row
    from llmplan.units import parse_count

    fmt = output_format(fmt)
    if params is None:
        raise InputError("give --params N and --tokens D (e.g. --params 70B --tokens 1.4T), or --params - to read 'N D' lines from stdin")
    if params.strip() == "-" or (tokens is not None and tokens.strip() == "-"):
        if tokens is not None and tokens.strip() != "-":
            raise InputError("with '-' every stdin line holds 'PARAMS TOKENS'; drop --tokens")
        pairs = [parse_pair(line) for line in stdin_lines()]
    else:
        if tokens is None:
            raise InputError("give --tokens D as well (e.g. --tokens 1.4T)")
        pairs = [(parse_count(params, "a parameter count"), parse_count(tokens, "a token count"))]
    if unique_tokens is not None:  # data-constrained (Muennighoff et al. 2023)
        from llmplan.cli.common import note
        from llmplan.scaling.data_constrained import CAVEAT, constrained_loss_row, resolve_law

        U = parse_count(unique_tokens, "a count of unique tokens")
        dc = resolve_law(law)
        from llmplan.rows import checked, out_of_range

        with out_of_range():
            rows = checked([constrained_loss_row(N, D, U, dc) for N, D in pairs])
        note(CAVEAT)
        columns = ["law", "params", "tokens", "unique_tokens", "epochs", "effective_params", "effective_tokens", "loss", "loss_unlimited_data"]
        labels = {"unique_tokens": "unique", "effective_params": "N'", "effective_tokens": "D'", "loss_unlimited_data": "loss (unique data)"}
        emit(rows, fmt, title=f"Predicted loss with repeated data ({dc.id})", columns=columns, labels=labels)
        return
    laws = resolve_laws(law, catalog(presets), None)
    if len(laws) > 1:
        laws = [l for l in laws if l.predicts_loss]
    from llmplan.rows import checked, mark_extrapolation, out_of_range

    rows = []
    extrapolating = []
    for each in laws:
        with out_of_range():
            answer = checked([loss_row(each, N, D) for N, D in pairs])
        warning = mark_extrapolation(each, answer)
        if warning:
            extrapolating.append((each.id, warning))
        rows.extend(answer)
    warn_extrapolations(extrapolating, len(laws))
    note_loss_datasets(rows, presets)
    title = f"Predicted loss ({laws[0].id if len(laws) == 1 else f'{len(laws)} laws'})"
    if len(pairs) == 1:
        from llmplan.units import format_count

        title += f": {format_count(pairs[0][0])} parameters, {format_count(pairs[0][1])} tokens"
    columns = ["law", "params", "tokens", "loss", "irreducible_loss", "reducible_loss", "size_share", "data_share"]
    labels = {"irreducible_loss": "irreducible", "reducible_loss": "reducible", "size_share": "from size", "data_share": "from data"}
    emit(rows, fmt, title=title, columns=columns, labels=labels, priority=["law", "params", "tokens", "loss"])
