"""Refresh the outputs shown under each `$ llmplan ...` example in README.md by running it.

    .venv/bin/python docs/sync_readme.py          # rewrite README.md in place
    .venv/bin/python docs/sync_readme.py --check  # exit 1 if any shown output is stale

Runs each example exactly as tests/test_readme.py does (bash, COLUMNS=150, NO_COLOR=1, table
format unless the command says otherwise). A shown output that ends in a line `...` keeps its
length: only its first lines are refreshed. Read the diff before committing: the test then keeps
the README and the behaviour from drifting apart.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
EPOCH = REPO.parent / "shared" / "data" / "epoch_chinchilla_fig4_svg_extracted.csv"


def run(command: str) -> str:
    env = {**os.environ, "COLUMNS": "150", "NO_COLOR": "1", "LLMPLAN_FORMAT": "table"}
    env.pop("LLMPLAN_PRESETS", None)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    with tempfile.TemporaryDirectory() as folder:
        if "svg_extracted_data.csv" in command and EPOCH.is_file():
            (Path(folder) / "svg_extracted_data.csv").symlink_to(EPOCH)
        if "tests/data/" in command:  # examples that read the repository's test files, as from its root
            (Path(folder) / "tests").symlink_to(REPO / "tests")
        result = subprocess.run(["bash", "-c", "set -o pipefail; " + command], capture_output=True, text=True, env=env, cwd=folder, timeout=600)
    lines = [line.rstrip() for line in result.stdout.rstrip("\n").splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def sync(text: str) -> str:
    out: list[str] = []
    lines = text.splitlines()
    index, in_block = 0, False
    while index < len(lines):
        line = lines[index]
        out.append(line)
        index += 1
        if line.strip() == "```console":
            in_block = True
            continue
        if in_block and line.strip() == "```":
            in_block = False
            continue
        if in_block and line.startswith("$ "):
            shown = []
            while index < len(lines) and not lines[index].startswith("$ ") and lines[index].strip() != "```":
                shown.append(lines[index])
                index += 1
            command = re.sub(r"\s+#\s*exit\s+\d+\s*$", "", line[2:])
            fresh = run(command).splitlines()
            if shown and shown[-1].strip() == "...":
                fresh = fresh[: len(shown) - 1] + ["..."]
            out.extend(fresh)
    return "\n".join(out) + "\n"


def main() -> int:
    text = README.read_text()
    new = sync(text)
    if "--check" in sys.argv:
        return 0 if new == text else 1
    README.write_text(new)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
