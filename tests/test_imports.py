"""Imports inside ``shallot`` go one way: no cycle, ``TYPE_CHECKING`` and function-level
imports included (issue 12). A cycle means a module lacks an owner of what it needs."""

from __future__ import annotations

import ast
from pathlib import Path

import shallot

PACKAGE = Path(shallot.__file__).parent


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ["shallot", *path.relative_to(PACKAGE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _imported(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Returns the modules of ``shallot`` that module ``name`` imports anywhere in its text."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            # A submodule importing its own package's __init__ is how Python loads it.
            if target and target != name and not name.startswith(target + "."):
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imported(name, path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """Returns one cycle of ``graph`` as a path that starts and ends at one module, or None."""
    done: set[str] = set()
    for start in sorted(graph):
        path: list[str] = []
        on_path: set[str] = set()
        stack = [(start, iter(sorted(graph[start])))]
        if start in done:
            continue
        path.append(start)
        on_path.add(start)
        while stack:
            node, edges = stack[-1]
            for target in edges:
                if target in on_path:
                    return [*path[path.index(target) :], target]
                if target not in done:
                    stack.append((target, iter(sorted(graph[target]))))
                    path.append(target)
                    on_path.add(target)
                    break
            else:
                stack.pop()
                done.add(node)
                on_path.discard(path.pop())
    return None


def test_the_finder_sees_a_cycle_through_type_checking_imports() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_type_checking_imports_are_in_the_graph() -> None:
    graph = import_graph()
    assert "shallot._ws_state" in graph["shallot._taskgroup"]
    assert "shallot._taskgroup" in graph["shallot._receiver"]


def test_shallot_has_no_import_cycle() -> None:
    assert find_cycle(import_graph()) is None


def test_the_websocket_core_imports_one_way() -> None:
    graph = import_graph()
    pure = {"shallot._types", "shallot._ws_messages", "shallot._ws_limits"}
    assert graph["shallot._ws_state"] <= pure
    assert graph["shallot._ws_limits"] == set()  # pure, and the bottom of the core
    assert "shallot._taskgroup" not in graph["shallot._watch"]
    assert "shallot._taskgroup" not in graph["shallot._merge"]
