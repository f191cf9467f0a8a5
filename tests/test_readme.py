"""Documentation as tests: every example in README.md runs, exits as shown, and prints what is shown.

README examples are ```console blocks: lines starting with `$ ` are commands (run through bash,
with this environment's `llmplan` first on PATH), the lines after them are the expected stdout.
A command without --format runs with LLMPLAN_FORMAT=table, as a person at a terminal would see it,
at COLUMNS=150 and without colour. A shown output ending in a line `...` is a prefix of the real
one. A command ending in `# exit N` must exit with N (default 0). Blocks that read the Epoch data
(`svg_extracted_data.csv`) run only where ../shared is present, with that file in the working folder;
examples that name `tests/data/` files see the repository's tests/ folder in theirs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, SHARED

README = REPO / "README.md"
EPOCH_FILE = "svg_extracted_data.csv"


def examples() -> list[tuple[str, list[str], int, int]]:
    """(command, expected stdout lines, expected exit code, README line number) for every example."""
    found = []
    lines = README.read_text().splitlines()
    in_block = False
    current: tuple[str, list[str], int, int] | None = None
    for number, line in enumerate(lines, start=1):
        if line.strip() == "```console":
            in_block = True
            continue
        if in_block and line.strip() == "```":
            in_block = False
            if current:
                found.append(current)
            current = None
            continue
        if not in_block:
            continue
        if line.startswith("$ "):
            if current:
                found.append(current)
            command = line[2:]
            code = 0
            match = re.search(r"\s+#\s*exit\s+(\d+)\s*$", command)
            if match:
                code = int(match.group(1))
                command = command[: match.start()]
            current = (command, [], code, number)
        elif current is not None:
            current[1].append(line)
    return found


EXAMPLES = examples()


def test_readme_has_examples_of_every_command():
    from llmplan.cli import COMMANDS

    shown = " ".join(command for command, *_ in EXAMPLES)
    for name in COMMANDS:
        assert re.search(rf"\bllmplan {name}\b", shown), f"README.md has no example of `llmplan {name}`"


def test_readme_gives_the_two_setup_commands_first():
    text = README.read_text()
    assert text.index("make run") < text.index("```console") and text.index("make test") < text.index("```console")


@pytest.mark.parametrize("command, expected, code, line", EXAMPLES, ids=[f"README.md:{e[3]}" for e in EXAMPLES])
def test_readme_example(command, expected, code, line, tmp_path):
    if EPOCH_FILE in command:
        if not (SHARED / "data" / "epoch_chinchilla_fig4_svg_extracted.csv").is_file():
            pytest.skip("needs the Epoch data from ../shared")
        (tmp_path / EPOCH_FILE).symlink_to(SHARED / "data" / "epoch_chinchilla_fig4_svg_extracted.csv")
    if "--hf " in command:
        pytest.importorskip("huggingface_hub")  # an optional extra (llmplan[hub]); the test extra installs it
    if "docs/examples/" in command:  # the shipped example runs, as seen from a clone's root
        (tmp_path / "docs").symlink_to(REPO / "docs")
    if "tests/data/" in command:  # examples that read the repository's test files, as from its root
        (tmp_path / "tests").symlink_to(REPO / "tests")
    env = {**os.environ, "COLUMNS": "150", "NO_COLOR": "1", "LLMPLAN_FORMAT": "table"}
    env.pop("LLMPLAN_PRESETS", None)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    result = subprocess.run(["bash", "-c", "set -o pipefail; " + command], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert result.returncode == code, f"README.md:{line}: `{command}` exited {result.returncode}\n{result.stderr}"
    assert "Traceback" not in result.stderr
    actual = [l.rstrip() for l in result.stdout.rstrip("\n").splitlines()]
    wanted = [l.rstrip() for l in expected]
    for lines in (actual, wanted):
        while lines and not lines[-1]:
            lines.pop()
    if wanted and wanted[-1] == "...":
        wanted = wanted[:-1]
        actual = actual[: len(wanted)]
    assert actual == wanted, f"README.md:{line}: output of `{command}` differs:\n" + "\n".join(actual)
