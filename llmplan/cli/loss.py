"""`llmplan loss`: the loss a scaling law predicts for N parameters trained on D tokens."""

from __future__ import annotations

import typer

from llmplan.cli import options
from llmplan.cli.common import emit, output_format, say, stdin_lines

app = typer.Typer()

ParamsOption = options.params_option("Parameters (e.g. 70B); '-' reads 'PARAMS TOKENS' pairs from stdin, one per line.")
LawOption = options.law_option("Scaling law: preset id (default epoch-2024), a TOML file, or 'all' (the laws that predict loss).")
UniqueTokensOption = options.unique_tokens_option("Unique tokens behind the D training tokens (e.g. 25B): repeated epochs count as less data, under the data-constrained law muennighoff-2023.")


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
    from llmplan.commands.loss import loss as compute

    fmt = output_format(fmt)
    if params is not None and (params.strip() == "-" or (tokens is not None and tokens.strip() == "-")):
        # '-': 'PARAMS TOKENS' lines from stdin; with --tokens too the function says to drop it (stdin unread)
        params, tokens = (stdin_lines(), None) if tokens is None or tokens.strip() == "-" else ([], tokens)
    rows = compute(params=params, tokens=tokens, law=law, unique_tokens=unique_tokens, presets=presets)
    say(rows)
    if "law" in rows.detail:
        columns = ["law", "params", "tokens", "unique_tokens", "epochs", "effective_params", "effective_tokens", "loss", "loss_unlimited_data"]
        labels = {"unique_tokens": "unique", "effective_params": "N'", "effective_tokens": "D'", "loss_unlimited_data": "loss (unique data)"}
        emit(rows, fmt, title=f"Predicted loss with repeated data ({rows.detail['law'].id})", columns=columns, labels=labels)
        return
    laws, pairs = rows.detail["laws"], rows.detail["pairs"]
    title = f"Predicted loss ({laws[0].id if len(laws) == 1 else f'{len(laws)} laws'})"
    if len(pairs) == 1:
        from llmplan.units import format_count

        title += f": {format_count(pairs[0][0])} parameters, {format_count(pairs[0][1])} tokens"
    columns = ["law", "params", "tokens", "loss", "irreducible_loss", "reducible_loss", "size_share", "data_share"]
    labels = {"irreducible_loss": "irreducible", "reducible_loss": "reducible", "size_share": "from size", "data_share": "from data"}
    emit(rows, fmt, title=title, columns=columns, labels=labels, priority=["law", "params", "tokens", "loss"])
