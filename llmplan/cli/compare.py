"""`llmplan compare`: famous models against the compute-optimal frontier."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from llmplan.cli import options
from llmplan.cli.common import catalog, emit, note, output_format, warn

app = typer.Typer()

PlotOption = options.plot_option("the models against the law's frontier")


@app.command(help="""Famous models against the compute-optimal frontier: under- or over-trained, and by how much.

For each model, C = 6·N·D (N = active parameters for mixture-of-experts); optimal_params and
optimal_tokens are the law's split of that same C, tokens_ratio = tokens / optimal_tokens, and the
verdict says "near optimal" within a factor of 2. tokens_20x is the ~20 tokens per parameter rule.
implied_mfu = 6ND / (GPU-hours x 3600 x dense peak) for models whose GPU-hours are published
(gpu, gpu_hours); those hours include downtime, so it reads low against measured MFU.
predicted_mfu is the throughput model's, for runs whose GPU count and batch are published.
Default: every preset model with params and tokens.

Examples:

  llmplan compare

  llmplan compare --models chinchilla-70b,gpt-3-175b,llama-65b --law tokens-per-param

  llmplan compare --law epoch-2024 -f csv

  llmplan compare --plot frontier.png     # a picture (.png or .svg)
""")
def compare(
    models: Annotated[Optional[str], typer.Option("--models", "-m", help="Comma-separated model ids or aliases (default: every decoder-only model with params and tokens).", show_default=False)] = None,
    law: options.LawOption = None,
    ratio: options.RatioOption = None,
    plot: PlotOption = None,
    stack: options.StackOption = None,
    fmt: options.FormatOption = None,
    presets: options.PresetsOption = None,
) -> None:
    from llmplan.scaling.laws import resolve_laws
    from llmplan.errors import InputError
    from llmplan.units import parse_positive

    fmt = output_format(fmt)
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
        names = [m.strip() for m in models.split(",") if m.strip()]
        if not names:
            raise InputError("--models needs at least one model id, e.g. --models chinchilla-70b,gpt-3-175b")
    from llmplan.planning.compare import compare_rows, pick_models

    picked = pick_models(cat, names)
    rows = compare_rows(chosen, picked, cat, options.load_stack(stack, presets))
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
    columns = ["model", "params", "tokens", "optimal_params", "optimal_tokens", "tokens_20x", "verdict"]
    explained: dict[str, str] = {}
    if chosen.predicts_loss:
        columns += ["loss", "optimal_loss"]
    if any(r["implied_mfu"] is not None for r in rows):
        columns.append("implied_mfu")
        explained["implied_mfu"] = ("MFU (impl.) = 6ND / (published GPU-hours x 3600 x dense bf16 peak); published GPU-hours include downtime, "
                                    "restarts and evaluation, so it is below the MFU the authors measured while running")
    if any(r["predicted_mfu"] is not None for r in rows):
        columns.append("predicted_mfu")
        explained["predicted_mfu"] = "(model): the throughput model's fastest layout for the published GPUs and batch, counted as 6ND like the implied MFU (no downtime)"
    labels = {
        "tokens_per_param": "tok/param",
        "pf_days": "PF-days",
        "optimal_params": "opt. N",
        "optimal_tokens": "opt. D",
        "tokens_20x": "20·N",
        "optimal_loss": "opt. loss",
        "implied_mfu": "MFU (impl.)",
        "predicted_mfu": "(model)",
    }
    if getattr(chosen, "minimises_loss", None) is False:
        note(f"{chosen.id}: the 'optimal' split is the paper's fitted allocation, not the minimiser of its own L(N, D), so a trained model can show a lower loss than its optimum")
    if chosen.convention != "total":
        note(f"law {chosen.id} counts non-embedding parameters; the presets count all of them, so read its verdicts loosely")
    priority = ["model", "verdict", "params", "tokens", "optimal_params", "optimal_tokens", "loss", "optimal_loss", "tokens_20x"]
    emit(rows, fmt, title=f"Trained vs compute-optimal for the same compute ({chosen.id})", columns=columns, labels=labels, priority=priority,
         column_notes=explained)
