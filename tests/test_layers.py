"""Layers: data flows one way (docs/architecture.md).

    api | cli/ -> commands/ -> io/ -> planning/ -> scaling/ | systems/ -> model/ -> ground

A module imports only its own group or the groups to its right, lazy function-level imports
included; scaling/ and systems/ never import each other; no core module imports io/ or cli/; a
command imports shared CLI modules and the core, never another command. The import graph has no
cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "llmplan"

# Group -> rank: a module may import a module of a lower rank, or of its own group.
# scaling and systems share a rank and may not import each other.
RANKS = {"ground": 0, "model": 1, "scaling": 2, "systems": 2, "planning": 3, "io": 4, "commands": 5, "cli": 6, "api": 6}
# The command functions (llmplan.commands) are what both the command line and the Python API call:
# cli and api sit side by side above them and never import each other. The package's __init__ is
# ground, but its lazy facade (`llmplan.plan(...)` loads llmplan.api on first use) may import
# llmplan.api and nothing else above ground: that one edge is left out of the graph and checked
# on its own (test_the_facade_imports_only_the_api).
FACADE = ("llmplan", "llmplan.api")
GROUND = {"llmplan", "llmplan.errors", "llmplan.units", "llmplan.dtypes", "llmplan.rows", "llmplan.presets", "llmplan.lawforms", "llmplan.records"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> list[tuple[str, str | None, int]]:
    """(module, imported name or None, line) for every llmplan import in the file, wherever it is."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, str | None, int]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, None, node.lineno) for alias in node.names if alias.name.split(".")[0] == "llmplan"]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            if base.split(".")[0] != "llmplan":
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append((sub, None, node.lineno) if sub in known else (base, alias.name, node.lineno))
    return found


def import_graph() -> dict[str, set[str]]:
    """module -> the llmplan modules it imports anywhere in its source (top level or in functions)."""
    found = modules()
    known = set(found)
    graph = {name: {m for m, _, _ in imports_of(name, path, known) if m in known and m != name} for name, path in found.items()}
    graph[FACADE[0]].discard(FACADE[1])
    return graph


def group(name: str) -> str:
    if name in GROUND or name == "llmplan._presets":
        return "ground"
    if name == "llmplan.__main__":
        return "cli"  # `python -m llmplan` is the command line
    top = name.split(".")[1]
    if top not in RANKS:
        raise AssertionError(f"{name} belongs to no group: put it in a group of docs/architecture.md or in ground (GROUND)")
    return top


def commands() -> set[str]:
    """The command modules, read from the command table of llmplan/cli/__init__.py."""
    tree = ast.parse((PACKAGE / "cli" / "__init__.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", None) == "COMMANDS":
            return {value.value for value in node.value.values}  # type: ignore[union-attr]
    raise AssertionError("no COMMANDS table in llmplan/cli/__init__.py")


def violations(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for name, targets in graph.items():
        mine = group(name)
        for target in targets:
            theirs = group(target)
            if theirs == mine:
                continue
            if RANKS[theirs] >= RANKS[mine]:
                bad.append(f"{name} ({mine}) imports {target} ({theirs})")
    return sorted(bad)


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_import_graph_has_no_cycle():
    cycle = _cycle(import_graph())
    assert cycle is None, " -> ".join(cycle)


def test_every_module_belongs_to_a_group():
    for name in modules():
        assert group(name) in RANKS


def test_imports_go_one_way():
    assert violations(import_graph()) == []


def test_scaling_and_systems_never_import_each_other():
    graph = import_graph()
    for name, targets in graph.items():
        if group(name) in ("scaling", "systems"):
            other = "systems" if group(name) == "scaling" else "scaling"
            assert not {t for t in targets if group(t) == other}, name


def test_no_core_module_imports_io_or_the_command_line():
    for name, targets in import_graph().items():
        if group(name) in ("ground", "model", "scaling", "systems", "planning"):
            assert not {t for t in targets if group(t) in ("io", "commands", "cli")}, name


def test_a_command_never_imports_another_command():
    graph = import_graph()
    names = commands()
    assert "llmplan.cli.plan" in names and "llmplan.cli.memory" in names
    for name in names:
        assert not (graph[name] & names) - {name}, (name, sorted(graph[name] & names))


def test_the_checker_can_fail():
    # Each rule must be able to fail: an upward import, a sibling import and a lazy import are seen.
    assert violations({"llmplan.model.arch": {"llmplan.systems.step_time"}}) == [
        "llmplan.model.arch (model) imports llmplan.systems.step_time (systems)"]
    assert violations({"llmplan.scaling.laws": {"llmplan.systems.budget"}})
    assert violations({"llmplan.io.render": {"llmplan.cli.common"}})
    assert not violations({"llmplan.planning.plan": {"llmplan.scaling.laws", "llmplan.systems.budget", "llmplan.units"}})
    with pytest.raises(AssertionError):
        group("llmplan.nowhere.thing")


def test_the_graph_sees_lazy_imports(tmp_path):
    path = tmp_path / "lazy.py"
    path.write_text("def f():\n    from llmplan.systems import step_time\n    import llmplan.units\n")
    found = {m for m, _, _ in imports_of("llmplan.io.lazy", path, {"llmplan.systems.step_time", "llmplan.units"})}
    assert found == {"llmplan.systems.step_time", "llmplan.units"}


def test_the_facade_imports_only_the_api():
    found = modules()
    targets = {m for m, _, _ in imports_of("llmplan", found["llmplan"], set(found))} - {"llmplan"}
    above_ground = {t for t in targets if group(t) != "ground"}
    assert above_ground == {"llmplan.api"}, sorted(above_ground)
