"""The layout shows the data flow: backquant → storage → assets → pipelines, no import upward, no
cycle, and neither backquant nor storage imports Dagster."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("backquant", "storage", "assets", "pipelines")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node but those under ``if TYPE_CHECKING:`` (annotations only, never run)."""
    nodes: list[ast.AST] = []
    pending = [tree]
    while pending:
        node = pending.pop()
        nodes.append(node)
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
            pending.extend(node.orelse)
            continue
        pending.extend(ast.iter_child_nodes(node))
    return nodes


def _imports(path: Path) -> set[str]:
    """Every module the file imports at run time, at any depth (lazy imports count)."""
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    files = {_module_name(path): path for layer in LAYERS for path in (ROOT / layer).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        graph[name] = {module for module in _imports(path) if module in files and module != name}
    return graph


def test_no_import_runs_upward() -> None:
    upward = [
        f"{module} imports {target}"
        for module, targets in _graph().items()
        for target in targets
        if LAYERS.index(target.split(".")[0]) > LAYERS.index(module.split(".")[0])
    ]
    assert upward == []


def test_backquant_and_storage_never_import_dagster() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for layer in ("backquant", "storage")
        for path in (ROOT / layer).rglob("*.py")
        if any(module.split(".")[0] == "dagster" for module in _imports(path))
    ]
    assert offenders == []


def test_no_import_cycle() -> None:
    graph = _graph()
    # Packages import their submodules by definition; a cycle through an __init__ is not one.
    edges = {
        module: {target for target in targets if not module.startswith(f"{target}.")}
        for module, targets in graph.items()
    }
    visiting: list[str] = []
    done: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        if module in done:
            return
        if module in visiting:
            cycles.append([*visiting[visiting.index(module) :], module])
            return
        visiting.append(module)
        for target in sorted(edges.get(module, ())):
            visit(target)
        visiting.pop()
        done.add(module)

    for module in sorted(edges):
        visit(module)
    assert cycles == []


@pytest.mark.xfail(
    strict=True,
    reason="issue 17 is not done: storage/ is still over its 3,000-line budget; strict, so "
    "this marker must go the day it fits",
)
def test_storage_stays_within_its_line_budget() -> None:
    lines = sum(len(path.read_text().splitlines()) for path in (ROOT / "storage").rglob("*.py"))
    assert lines <= 3000, f"storage/ has {lines} lines; the design keeps it at 3,000 or fewer"
