"""Layers: data flows one way (DESIGN.md). Lower modules never import higher ones, even lazily
inside a function: the import graph of llmplan's modules has no cycle, and no core module imports
the command line or the renderer."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "llmplan"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """module -> the llmplan modules it imports anywhere in its source (top level or in functions)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
                found = [base] + [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            targets.update(t for t in found if t in modules and t != name)
        graph[name] = targets
    return graph


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


def test_plan_and_constrained_are_not_a_circle():
    graph = import_graph()
    assert "llmplan.scaling.optimal" not in graph["llmplan.scaling.data_constrained"]


def test_laws_and_presets_are_not_a_circle():
    graph = import_graph()
    assert "llmplan.scaling.laws" not in graph["llmplan.presets"]


def test_core_modules_never_import_the_command_line_or_the_renderer():
    for name, targets in import_graph().items():
        if name.startswith("llmplan.cli") or name in ("llmplan", "llmplan.__main__", "llmplan.cli.schema", "llmplan.io.render", "llmplan.io.plots"):
            continue
        bad = {t for t in targets if t.startswith("llmplan.cli") or t == "llmplan.io.render"}
        assert not bad, (name, bad)


def test_the_graph_sees_lazy_imports():
    # The checker itself must be able to fail: a function-level import counts.
    graph = import_graph()
    assert "llmplan.scaling.data_constrained" in graph["llmplan.scaling.optimal"]  # `solve` imports it inside the function
