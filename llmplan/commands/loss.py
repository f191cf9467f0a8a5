"""`llmplan loss` as a function: the loss a scaling law predicts for N parameters trained on D tokens."""

from __future__ import annotations

from typing import Any

from llmplan.commands import args
from llmplan.commands.notes import laws_answered, note
from llmplan.commands.result import Rows, command
from llmplan.errors import InputError


def parse_pair(line: str) -> tuple[float, float]:
    """'70B 1.4T' (or comma/tab separated) -> (N, D)."""
    from llmplan.units import parse_count

    parts = line.split()  # whitespace first: '7,000,000,000 1.4T' keeps its digit grouping
    if len(parts) != 2:
        parts = [p.strip() for p in line.split(",")]
    if len(parts) != 2:
        from llmplan.errors import quote

        raise InputError(f"{quote(line)} is not a 'PARAMS TOKENS' pair; write one per line, e.g. '70B 1.4T'")
    return parse_count(parts[0], "a parameter count"), parse_count(parts[1], "a token count")


def _pair(item: Any) -> tuple[float, float]:
    """One pair of a list: 'PARAMS TOKENS' text (a line of `--params -`) or (params, tokens)."""
    from llmplan.units import parse_count

    if isinstance(item, (list, tuple)) and len(item) == 2:
        return parse_count(args.text(item[0]), "a parameter count"), parse_count(args.text(item[1]), "a token count")
    return parse_pair(str(item))


@command
def loss(*, params: Any = None, tokens: Any = None, law: Any = None, unique_tokens: Any = None, presets: Any = None) -> Rows:
    """The loss a scaling law predicts for `params` parameters trained on `tokens` tokens (`llmplan loss`),
    split into what a bigger model and what more data would remove; law="all" for every law that
    predicts loss; `unique_tokens` for repeated data (muennighoff-2023).

    `params` may be a list of pairs instead (what `--params -` reads from stdin, one a line): each
    'PARAMS TOKENS' text such as "70B 1.4T", or a (params, tokens) tuple; then no `tokens`.
    `detail`: {"law": the data-constrained law} with unique_tokens, else {"laws": laws, "pairs": (N, D) pairs}.

    Example: llmplan.loss(params="70B", tokens="1.4T")[0]["loss"]; llmplan.loss(params=["70B 1.4T", (280e9, 300e9)])
    """
    from llmplan.presets import catalog
    from llmplan.scaling.laws import resolve_laws
    from llmplan.scaling.optimal import loss_row
    from llmplan.units import parse_count

    if params is None:
        raise InputError("give --params N and --tokens D (e.g. --params 70B --tokens 1.4T), or --params - to read 'N D' lines from stdin")
    if isinstance(params, (list, tuple)):
        if tokens is not None:
            raise InputError("with '-' every stdin line holds 'PARAMS TOKENS'; drop --tokens")
        if not params:
            raise InputError("params is an empty list; give 'PARAMS TOKENS' pairs such as '70B 1.4T'")
        pairs = [_pair(item) for item in params]
    else:
        if tokens is None:
            raise InputError("give --tokens D as well (e.g. --tokens 1.4T)")
        pairs = [(parse_count(args.text(params), "a parameter count"), parse_count(args.text(tokens), "a token count"))]
    law = args.text(law)
    if unique_tokens is not None:  # data-constrained (Muennighoff et al. 2023)
        from llmplan.rows import checked, out_of_range
        from llmplan.scaling.data_constrained import CAVEAT, constrained_loss_row, resolve_law

        U = parse_count(args.text(unique_tokens), "a count of unique tokens")
        dc = resolve_law(law)
        with out_of_range():
            rows = checked([constrained_loss_row(N, D, U, dc) for N, D in pairs])
        note(CAVEAT)
        return Rows(rows, detail={"law": dc})
    laws = resolve_laws(law, catalog(presets), None)
    if len(laws) > 1:
        laws = [l for l in laws if l.predicts_loss]
    from llmplan.rows import checked, out_of_range

    answered = []
    for each in laws:
        with out_of_range():
            answered.append((each, checked([loss_row(each, N, D) for N, D in pairs])))
    rows = laws_answered(answered, len(laws), presets)
    return Rows(rows, detail={"laws": laws, "pairs": pairs})
