"""Notes and warnings a command says about its result (stderr on the command line, Rows.notes in Python).

A command says them while it computes; they are held, each once, and the command line writes them
after its table (llmplan.cli.common.flush_notes), while a function of llmplan.commands returns them
with its rows (llmplan.commands.result).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

NOTE = "note: "
WARNING = "warning: "

# (prefix, message) in the order said; a message said twice is held once.
_pending: list[tuple[str, str]] = []
_said: set[str] = set()


def say(prefix: str, message: str) -> None:
    if message in _said:
        return
    _said.add(message)
    _pending.append((prefix, message))


def note(message: str) -> None:
    """Context for a person reading the output (never mixed with results)."""
    say(NOTE, message)


def warn(message: str) -> None:
    """Something the result should be read with."""
    say(WARNING, message)


def take() -> list[tuple[str, str]]:
    """The notes held so far, forgotten here."""
    held = list(_pending)
    _pending.clear()
    _said.clear()
    return held


def swap(held: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Hold `held` instead of what is held now, which is returned (a call collects its own notes)."""
    before = take()
    for prefix, message in held:
        say(prefix, message)
    return before


def warn_counted(items: Sequence[tuple[str, str]], total: int, noun: str) -> None:
    """One warning line per kind, not one per row: items are (subject, what is wrong), e.g.
    ("1e+21 FLOPs", "the minimum is at the edge ..."); the same wrong said of 33 subjects becomes
    'warning: 33 of 33 budgets (1e+18 ... 3e+21 FLOPs): the minimum is at the edge ...'."""
    kinds: dict[str, list[str]] = {}
    for subject, what in items:
        kinds.setdefault(what, []).append(subject)
    for what, subjects in kinds.items():
        if len(subjects) == 1:
            named = subjects[0]
        elif len(subjects) <= 3:
            named = ", ".join(subjects)
        else:
            named = f"{subjects[0]} ... {subjects[-1]}"
        warn(f"{len(subjects)} of {total} {noun} ({named}): {what}")


def warn_extrapolations(found: Sequence[tuple[str, str]], laws: int) -> None:
    """The extrapolation warnings of several laws ((law id, warning) each) as one line."""
    if len(found) == 1:
        warn(found[0][1])
    elif found:
        ids = ", ".join(law for law, _ in found)
        warn(f"{len(found)} of {laws} laws are used beyond the range they were fitted on ({ids}), so their rows, "
             "marked *, are extrapolations; 'llmplan presets show LAW' gives each range")


def laws_answered(answered: Sequence[tuple[Any, list]], laws: int, presets_dir: Path | None) -> list:
    """The rows each law gave ((law, rows) pairs, of `laws` asked) as one list: the rows beyond a law's
    fitted range marked, one warning for all such laws, and a note where the losses are on different data."""
    from llmplan.rows import mark_extrapolation

    rows: list = []
    extrapolating = []
    for law, answer in answered:
        warning = mark_extrapolation(law, answer)
        if warning:
            extrapolating.append((law.id, warning))
        rows.extend(answer)
    warn_extrapolations(extrapolating, laws)
    note_loss_datasets(rows, presets_dir)
    return rows


def note_loss_datasets(rows: Sequence[Any], presets_dir: Path | None) -> None:
    """A note when rows hold losses of laws measured on different data or tokenizers (presets: dataset,
    tokenizer): nats per token on one corpus and vocabulary do not compare with another's."""
    from llmplan.presets import catalog

    cat = catalog(presets_dir)
    groups: dict[str, list[str]] = {}
    for law in dict.fromkeys(r.get("law") for r in rows if r.get("loss") is not None and r.get("law")):
        preset = cat.find("laws", law)
        if preset is None or not preset.get("dataset"):
            continue
        where = f"{preset['dataset'].split(' (')[0]} with {str(preset.get('tokenizer') or 'its tokenizer').split(' (')[0]}"
        groups.setdefault(where, []).append(law)
    if len(groups) > 1:
        said = "; ".join(f"{', '.join(laws)} on {where}" for where, laws in groups.items())
        note(f"these losses were measured on different data and tokenizers ({said}): compare losses only between laws of one dataset")
