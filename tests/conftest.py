"""Shared test helpers: run the CLI in-process, find ../shared when it is there."""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings

# Tests write nothing outside their temporary folders: no hypothesis example database in the
# checkout, and matplotlib's font cache in a scratch folder (tests still seed their own examples).
settings.register_profile("llmplan", database=None)
settings.load_profile("llmplan")
import os
import tempfile

os.environ.setdefault("MPLCONFIGDIR", tempfile.mkdtemp(prefix="llmplan-mpl-"))
os.environ["LLMPLAN_CACHE"] = tempfile.mkdtemp(prefix="llmplan-cache-")  # the presets' parse cache, not the user's

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
DATA = Path(__file__).resolve().parent / "data"


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


def run_cli(args: list[str], stdin: str | None = None, env: dict[str, str] | None = None, monkeypatch=None) -> Result:
    """Run `llmplan ARGS` in this process and capture its exit code, stdout and stderr."""
    from llmplan.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdin = io.StringIO(stdin if stdin is not None else "")
    sys.stdout, sys.stderr = out, err
    try:
        try:
            main(list(args))
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved
    return Result(code, out.getvalue(), err.getvalue())


@pytest.fixture
def cli(monkeypatch):
    """cli(["optimal", "--budget", "1e24", "-f", "json"], stdin=None) -> Result. No LLMPLAN_* env leaks in."""
    for name in ("LLMPLAN_FORMAT", "LLMPLAN_PRESETS", "LLMPLAN_DEBUG"):
        monkeypatch.delenv(name, raising=False)

    def _run(args, stdin=None):
        return run_cli(args, stdin=stdin)

    return _run


@pytest.fixture
def shared_dir() -> Path:
    """../shared beside the repository; tests that need it skip cleanly in a user's clone."""
    if not (SHARED / "data").is_dir():
        pytest.skip("../shared is not present (it is only beside the development checkout)")
    return SHARED
