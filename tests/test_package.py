"""The package as shipped: every import in it resolves (lazy ones included, without running them),
and the built wheel holds every module and preset file found in the tree."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from test_layers import PACKAGE, imports_of, modules

ROOT = PACKAGE.parent


def _defined_names(path: Path) -> set[str]:
    """Names a module binds at its top level (also under if/try at top level, TYPE_CHECKING blocks included)."""
    names: set[str] = set()
    body = list(ast.parse(path.read_text(), str(path)).body)
    while body:
        node = body.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            body += node.body + getattr(node, "orelse", []) + getattr(node, "finalbody", [])
            for handler in getattr(node, "handlers", []):
                body += handler.body
    return names


def unresolved() -> list[str]:
    found = modules()
    known = set(found)
    defined = {name: _defined_names(path) for name, path in found.items()}
    bad = []
    for name, path in found.items():
        for module, attribute, line in imports_of(name, path, known):
            where = f"{path.relative_to(ROOT)}:{line}"
            if module == "llmplan._presets":
                continue  # a data package mapped from presets/ (pyproject.toml)
            if module not in known:
                bad.append(f"{where}: no module {module}")
            elif attribute is not None and attribute not in defined[module]:
                bad.append(f"{where}: {module} has no {attribute}")
    return bad


def test_every_import_in_the_package_resolves():
    assert unresolved() == []


def test_the_resolver_can_fail(tmp_path, monkeypatch):
    ghost = PACKAGE / "io" / "_ghost_for_test.py"
    assert not ghost.exists()
    try:
        ghost.write_text("from llmplan.units import no_such_function\n\ndef f():\n    from llmplan.nowhere import x\n")
        problems = unresolved()
    finally:
        ghost.unlink()
    assert any("llmplan.units has no no_such_function" in p for p in problems)
    assert any("no module llmplan.nowhere" in p for p in problems)


def _wheel(tmp_path: Path) -> Path:
    pytest.importorskip("setuptools", minversion="77")  # bdist_wheel built in, SPDX license strings (the test extra installs it)
    source = tmp_path / "src"
    source.mkdir()
    for item in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / item, source / item)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "llmplan", source / "llmplan", ignore=ignore)
    shutil.copytree(ROOT / "presets", source / "presets", ignore=ignore)
    out = tmp_path / "dist"
    code = "import sys; from setuptools import build_meta; print(build_meta.build_wheel(sys.argv[1]))"
    done = subprocess.run([sys.executable, "-c", code, str(out)], cwd=source, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return out / done.stdout.strip().splitlines()[-1]


def test_the_wheel_holds_every_module_and_preset(tmp_path):
    with zipfile.ZipFile(_wheel(tmp_path)) as wheel:
        shipped = set(wheel.namelist())
    expected = {str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*.py")}
    expected |= {f"llmplan/_presets/{p.name}" for p in (ROOT / "presets").glob("*.toml")}
    assert expected - shipped == set()
