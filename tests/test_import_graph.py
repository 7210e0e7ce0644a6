"""The package layering of ``src/mmquant`` is a DAG (DESIGN.md, "Decisions").

The graph is built statically with ``ast`` from every ``import`` in the source, function-level imports included
(a lazy import still ties two packages together). A node is a top-level package or module of ``mmquant``
(``models``, ``hub``, ``zoo``, ...); ``mmquant`` itself is the node ``mmquant`` (its ``__init__`` re-exports).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import mmquant

SRC = Path(mmquant.__file__).resolve().parent
ROOT = "mmquant"


def _unit(module: str) -> str | None:
    """The node of a dotted module name inside mmquant, or None for a module outside it."""
    parts = module.split(".")
    if parts[0] != ROOT:
        return None
    if len(parts) == 1:
        return ROOT
    head = parts[1]
    if (SRC / head).is_dir() or (SRC / f"{head}.py").is_file():
        return head
    return ROOT  # a name re-exported by mmquant/__init__.py


def _module_name(path: Path) -> tuple[list[str], bool]:
    parts = [ROOT, *path.relative_to(SRC).with_suffix("").parts]
    if parts[-1] == "__init__":
        return parts[:-1], True
    return parts, False


def _imported_modules(path: Path) -> list[str]:
    """Every mmquant module that ``path`` imports, resolved to absolute dotted names."""
    parts, is_package = _module_name(path)
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = parts if is_package else parts[:-1]
                base = package[: len(package) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # `from mmquant import hub` imports the package hub; `from mmquant.hub import cards` the module.
            found.extend(f"{module}.{alias.name}" for alias in node.names)
    return found


def build_import_graph() -> dict[str, dict[str, set[str]]]:
    """``graph[a][b]`` is the set of files of ``a`` that import something of ``b`` (``a != b``)."""
    graph: dict[str, dict[str, set[str]]] = {}
    for path in sorted(SRC.rglob("*.py")):
        parts, _ = _module_name(path)
        source = _unit(".".join(parts))
        graph.setdefault(source, {})
        for module in _imported_modules(path):
            target = _unit(module)
            if target is not None and target != source:
                graph[source].setdefault(target, set()).add(str(path.relative_to(SRC.parent)))
    return graph


def find_cycle(graph: dict[str, dict[str, set[str]]]) -> list[str] | None:
    """One cycle ``[a, b, ..., a]`` of the graph, or None when it is a DAG."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, {})):
            if state.get(target) == 1:
                return path[path.index(target) :] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def _describe(graph: dict[str, dict[str, set[str]]], cycle: list[str]) -> str:
    lines = [" -> ".join(cycle)]
    for source, target in zip(cycle, cycle[1:]):
        lines.append(f"  {source} -> {target}: {', '.join(sorted(graph[source][target]))}")
    return "\n".join(lines)


def test_graph_sees_function_level_and_relative_imports():
    graph = build_import_graph()
    # models/registry.py imports the quantizers at module level; the CLI imports the hub inside functions.
    assert "quantizers" in graph["models"]
    assert "hub" in graph["cli"]
    assert {"models", "hub", "data", "training", "pipelines", "metrics"} <= graph.keys()


def test_find_cycle_reports_a_cycle():
    graph = {"a": {"b": {"a.py"}}, "b": {"c": {"b.py"}}, "c": {"a": {"c.py"}}, "d": {"a": {"d.py"}}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b": {"a.py"}}, "b": {}}) is None


def test_packages_form_a_dag():
    graph = build_import_graph()
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle between packages of mmquant:\n" + _describe(graph, cycle)


@pytest.mark.parametrize(
    ("lower", "upper"),
    [
        ("models", "hub"),  # the push-with-card mixin and the card details live with the models
        ("models", "training"),
        ("models", "pipelines"),
        ("models", "metrics"),
        ("data", "hub"),  # the dataset card sits with the data; the hub only runs its command line
        ("pipelines", "training"),  # the sample grids are in data/
    ],
)
def test_lower_layer_does_not_import_upper(lower, upper):
    graph = build_import_graph()
    assert upper not in graph[lower], f"mmquant.{lower} imports mmquant.{upper}: {sorted(graph[lower][upper])}"
