"""The package structure holds: imports point one way, and the core stays pure.

Read from the source with ``ast`` (nothing is imported but in the last test), counting every
``import`` wherever it stands: at module level, inside a function, or under
``TYPE_CHECKING`` (a type-only import is still a dependency a reader must follow). A "part"
is a top-level package (``engine/``) or module (``errors.py``) of ``flowrunner``. The package
root (``flowrunner/__init__.py``) is the public facade: it re-exports lazily from every
part, and no part may import a name from it.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import flowrunner

SRC = Path(flowrunner.__file__).resolve().parent
ROOT = "flowrunner"

# What the pure core may import besides the standard library and its own package.
PURE_CORE: dict[str, set[str]] = {
    # The graph engine: nothing of Flowrunner but the exception tree.
    "engine": {"flowrunner.errors"},
    # ``${...}`` evaluation; JavaScript goes through a Protocol the sandbox satisfies.
    "expressions": {"flowrunner.errors"},
    # The sandbox: ``py_mini_racer`` is V8 (loaded in the worker processes only);
    # ``fairness`` is a standard-library-only leaf (checked below) that shares the workers
    # fairly between accounts.
    "scripting": {"flowrunner.errors", "flowrunner.fairness", "py_mini_racer"},
}
# Leaves the pure core may lean on: they import only the standard library.
STDLIB_LEAVES = ("errors", "fairness")


@dataclass(frozen=True, slots=True)
class Import:
    source: str  # the importing module, dotted
    target: str  # the imported module
    line: int
    name: str | None = None  # the name taken from it, when that is not a module


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(dotted: str) -> bool:
    base = SRC.parent.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


@cache
def imports() -> tuple[Import, ...]:
    found: list[Import] = []
    for path in sorted(SRC.rglob("*.py")):
        module = _module_name(path)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                found.extend(Import(module, alias.name, node.lineno) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([node.module] if node.module else [])])
                else:
                    base = node.module or ""
                for alias in node.names:
                    # ``from flowrunner import jsontext`` imports the module jsontext.
                    name = f"{base}.{alias.name}"
                    if _is_module(name):
                        found.append(Import(module, name, node.lineno))
                    else:
                        found.append(Import(module, base, node.lineno, alias.name))
    return tuple(found)


def part(dotted: str) -> str | None:
    """The top-level part of a flowrunner module (None for the root and for other code)."""
    pieces = dotted.split(".")
    if pieces[0] != ROOT or len(pieces) < 2:
        return None
    return pieces[1]


def part_graph() -> dict[str, dict[str, list[Import]]]:
    """part → imported part → the imports that make the arrow."""
    graph: dict[str, dict[str, list[Import]]] = {}
    for imp in imports():
        source, target = part(imp.source), part(imp.target)
        if source is None or target is None or source == target or source == "__main__":
            continue
        graph.setdefault(source, {}).setdefault(target, []).append(imp)
    return graph


def cycles(graph: dict[str, dict[str, list[Import]]]) -> Iterator[list[str]]:
    """Each strongly connected group of parts with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()

    def visit(node: str) -> Iterator[list[str]]:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, {}):
            if nxt not in index:
                yield from visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                yield sorted(group)

    for node in sorted(graph):
        if node not in index:
            yield from visit(node)


def _where(imp: Import) -> str:
    return f"{imp.source}:{imp.line} imports {imp.target}"


def _foreign(dotted: str) -> bool:
    """Neither the standard library nor Flowrunner."""
    top = dotted.split(".")[0]
    return top != ROOT and top not in sys.stdlib_module_names


def test_the_reader_sees_the_imports_it_checks() -> None:
    # Arrows known to exist, so a broken reader (an empty graph) cannot pass for a clean one.
    graph = part_graph()
    assert "engine" in graph["definition"]
    assert "storage" in graph["executions"]
    assert "errors" in graph["engine"]


def test_no_import_cycle_between_top_level_packages() -> None:
    graph = part_graph()
    found = list(cycles(graph))
    details = [
        f"{' ↔ '.join(group)}: "
        + "; ".join(_where(graph[a][b][0]) for a in group for b in group if b in graph.get(a, {}))
        for group in found
    ]
    assert not found, "packages import each other:\n" + "\n".join(details)


def test_no_part_imports_the_public_facade() -> None:
    # The root re-exports from every part: a name taken from it would hide where it comes
    # from (and this test's arrows). Only what the root itself defines may be imported.
    own = {"__version__"}
    offenders = [
        f"{_where(i)}.{i.name}"
        for i in imports()
        if i.target == ROOT and i.source != ROOT and i.name not in own
    ]
    assert not offenders, "import the defining module instead:\n" + "\n".join(offenders)


def test_the_pure_core_imports_only_the_standard_library_and_errors() -> None:
    problems = []
    for imp in imports():
        core = part(imp.source)
        if core not in PURE_CORE or part(imp.target) == core:
            continue
        allowed = PURE_CORE[core]
        if imp.target in allowed or imp.target.split(".")[0] in allowed:
            continue
        if part(imp.target) is not None or _foreign(imp.target):
            problems.append(_where(imp))
    assert not problems, "the pure core reaches out:\n" + "\n".join(sorted(set(problems)))


def test_the_leaves_of_the_pure_core_import_only_the_standard_library() -> None:
    problems = [
        _where(imp)
        for imp in imports()
        if part(imp.source) in STDLIB_LEAVES
        and part(imp.target) != part(imp.source)
        and (part(imp.target) is not None or _foreign(imp.target))
    ]
    assert not problems, "\n".join(problems)


def test_node_types_build_from_the_spec_leaf_not_from_the_loader_or_registry() -> None:
    # definition → plugins → nodes, never back: node types take NodeSpec and BuildEnv from
    # nodes.spec, which imports nothing of Flowrunner when it runs (types only).
    graph = part_graph()
    assert "definition" not in graph["nodes"], graph["nodes"].get("definition")
    assert "plugins" not in graph["nodes"], graph["nodes"].get("plugins")
    tree = ast.parse((SRC / "nodes" / "spec.py").read_text(encoding="utf-8"))
    runtime = [
        node.lineno
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(ROOT)
    ]
    assert not runtime, f"nodes/spec.py imports Flowrunner at run time on lines {runtime}"


def test_logging_depends_on_no_storage() -> None:
    assert "storage" not in part_graph().get("logging", {})
    # Real imports in a fresh interpreter: package __init__ files count too.
    code = "import json, sys; import flowrunner.logging; print(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(SRC.parent)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout
    heavy = [
        name
        for name in json.loads(out)
        if name.startswith(("flowrunner.storage", "flowrunner.secrets.vault", "cryptography"))
        or name.startswith(("starlette", "sqlalchemy"))
    ]
    assert not heavy, f"import flowrunner.logging loads {heavy}"


def test_node_types_take_run_scoped_values_from_the_context_not_context_variables() -> None:
    # One way for a node type to get what a run provides (secrets, a stored-flow host, an
    # account's store): a ``RunScoped`` key read with ``ctx.scoped`` (docs/engine.md).
    declared = []
    for path in sorted((SRC / "nodes").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name == "ContextVar":
                    declared.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert not declared, "use a RunScoped key instead of a ContextVar: " + ", ".join(declared)
