"""`llmplan compare` as a function: famous models against the compute-optimal frontier."""

from __future__ import annotations

from typing import Any

from llmplan.commands import args
from llmplan.commands.notes import note, warn
from llmplan.commands.result import Rows, command
from llmplan.errors import InputError

# What the MFU columns mean: under the table on the command line; notes with the rows (and in the machine formats).
COLUMN_NOTES = {
    "implied_mfu": ("MFU (impl.) = 6ND / (published GPU-hours x 3600 x dense bf16 peak); published GPU-hours include downtime, "
                    "restarts and evaluation, so it is below the MFU the authors measured while running"),
    "predicted_mfu": "(model): the throughput model's fastest layout for the published GPUs and batch, counted as 6ND like the implied MFU (no downtime)",
}


@command
def compare(*, models: Any = None, law: Any = None, ratio: Any = None, plot: Any = None, stack: Any = None, presets: Any = None) -> Rows:
    """Famous models against the compute-optimal frontier (`llmplan compare`): for each model the law's
    split of its compute C = 6·N·D, how far its tokens are from it, and a verdict; `models` a
    comma-separated text of ids or a list (default: every decoder-only preset with params and tokens).
    `detail` is (the law, {column: what it means} for the MFU columns the rows fill).

    Example: llmplan.compare(models="chinchilla-70b,gpt-3-175b", law="chinchilla")[0]["verdict"]
    """
    from llmplan.presets import catalog
    from llmplan.scaling.laws import resolve_laws
    from llmplan.units import parse_positive

    law, ratio = args.text(law), args.text(ratio)
    if law is not None and law.strip().lower() == "all":
        raise InputError("compare takes one law; 'all' is for 'llmplan optimal' (try --law epoch-2024)")
    r = parse_positive(ratio, "a tokens-per-parameter ratio (e.g. 20)") if ratio is not None else None
    if plot is not None:
        from llmplan.io.plots import check_plot_path, require_matplotlib

        check_plot_path(plot)
        require_matplotlib()
    cat = catalog(presets)
    chosen = resolve_laws(law, cat, r)[0]
    names = None
    if models is not None:
        given = args.listed(models) if isinstance(models, (list, tuple)) else str(models).split(",")
        names = [str(m).strip() for m in given if str(m).strip()]
        if not names:
            raise InputError("--models needs at least one model id, e.g. --models chinchilla-70b,gpt-3-175b")
    from llmplan.planning.compare import compare_rows, pick_models

    picked = pick_models(cat, names)
    rows = compare_rows(chosen, picked, cat, args.load_stack(stack, presets))
    moe = [p for p in picked if p.get("active_params")]
    if moe:
        active = ", ".join(f"{p.id} {p.get('active_params') / 1e9:.0f}B of {p.get('params') / 1e9:.0f}B" for p in moe)
        note(f"mixture{'s' if len(moe) > 1 else ''} of experts, judged by active parameters under a law fitted on dense models: {active}")
    # A model is judged at its own size and tokens: is that inside what the law was fitted on?
    from llmplan.rows import mark_extrapolation

    warning = mark_extrapolation(chosen, rows)
    if warning:
        warn(warning)
    if plot is not None:
        from llmplan.io.plots import plot_frontier

        plot_frontier(plot, [(r["model"], r["params"], r["tokens"]) for r in rows], chosen)
        note(f"wrote {plot}")
    if getattr(chosen, "minimises_loss", None) is False:
        note(f"{chosen.id}: the 'optimal' split is the paper's fitted allocation, not the minimiser of its own L(N, D), so a trained model can show a lower loss than its optimum")
    if chosen.convention != "total":
        note(f"law {chosen.id} counts non-embedding parameters; the presets count all of them, so read its verdicts loosely")
    explained = {key: text for key, text in COLUMN_NOTES.items() if any(r[key] is not None for r in rows)}
    for text in explained.values():
        note(text)
    return Rows(rows, detail=(chosen, explained))
