"""`llmplan compare`: famous models against the compute-optimal frontier."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from llmplan.cli import options
from llmplan.cli.common import emit, output_format

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
    from llmplan.commands import notes
    from llmplan.commands.compare import compare as compute

    fmt = output_format(fmt)
    rows = compute(models=models, law=law, ratio=ratio, plot=plot, stack=stack, presets=presets)
    chosen, explained = rows.detail
    for prefix, message in rows.said:  # a table shows what its columns mean under itself, not as notes
        if fmt != "table" or message not in explained.values():
            notes.say(prefix, message)
    columns = ["model", "params", "tokens", "optimal_params", "optimal_tokens", "tokens_20x", "verdict"]
    if chosen.predicts_loss:
        columns += ["loss", "optimal_loss"]
    columns += list(explained)
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
    priority = ["model", "verdict", "params", "tokens", "optimal_params", "optimal_tokens", "loss", "optimal_loss", "tokens_20x"]
    emit(rows, fmt, title=f"Trained vs compute-optimal for the same compute ({chosen.id})", columns=columns, labels=labels, priority=priority,
         column_notes=explained)
