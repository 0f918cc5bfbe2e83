"""Every check on a parsed flow, collecting all problems at once (never stopping at the first).

Order: the JSON Schema (shape, types, durations; unknown keys as warnings), then per node its
type, its own params schema and expression syntax, then the graph: ``next`` targets, the start
node and reachability.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from pathlib import Path as FsPath
from typing import TYPE_CHECKING, Any

from flowrunner.definition.fanout import JOIN, SPLIT, branches_of, meeting_points
from flowrunner.definition.graph import GraphChecks
from flowrunner.definition.limits import script_too_long
from flowrunner.definition.schema import flow_schema
from flowrunner.definition.schema_errors import schema_problems
from flowrunner.definition.source import Path, SourceMap, dotted
from flowrunner.definition.triggers import check_triggers
from flowrunner.errors import ExpressionError, FlowrunnerError, Problem, ScriptError
from flowrunner.expressions import (
    SCOPE_NAMES,
    Segment,
    compile_expression,
    compile_return,
    parse_path,
    split_template,
)
from flowrunner.plugins import NodeTypeRegistry

if TYPE_CHECKING:
    import jsonschema

    from flowrunner.scripting.host import ScriptHost, SyntaxKind


@cache
def _flow_validator() -> jsonschema.Draft202012Validator:
    # jsonschema (~3 MB with referencing and attrs) is imported by the first validation,
    # not by every server start.
    import jsonschema

    return jsonschema.Draft202012Validator(flow_schema())


class Checker(GraphChecks):
    """Runs the checks on one parsed document; ``problems`` holds the findings."""

    def __init__(
        self,
        data: Mapping[str, Any],
        positions: SourceMap,
        registry: NodeTypeRegistry,
        base_path: FsPath | None = None,
        scripts: ScriptHost | None = None,
        subflows: Callable[[FsPath], list[Problem]] | None = None,
        max_script_bytes: int | None = None,
    ) -> None:
        self.data = data
        self.max_script_bytes = max_script_bytes
        self.positions = positions
        self.registry = registry
        self.base_path = base_path
        # Checks JavaScript syntax (the sandbox's), when one was given.
        self.scripts = scripts
        self.problems: list[Problem] = []
        # Validates a sub-flow file (recursion included); given by load.py, which owns that.
        self.subflows = subflows
        self.start: str | None = None
        self.tool_refs: dict[str, list[tuple[str, Path]]] = {}
        nodes = data.get("nodes")
        self.nodes: dict[str, Mapping[str, Any]] = (
            {k: v for k, v in nodes.items() if isinstance(v, Mapping)}
            if isinstance(nodes, Mapping)
            else {}
        )

    def run(self) -> list[Problem]:
        self.problems.extend(
            schema_problems(_flow_validator().iter_errors(self.data), self.positions)
        )
        self._check_nul(self.data)
        for node_id, node in self.nodes.items():
            self._check_node(node_id, node)
        self.start = self.check_graph()
        self._check_splits()
        check_triggers(self.data, lambda path, message: self.error(path, message))
        return self.problems

    # --- helpers ---------------------------------------------------------------------------

    def error(
        self,
        path: Path,
        message: str,
        hint: str | None = None,
        *,
        key: bool = False,
        severity: str = "error",
    ) -> None:
        line, column = (self.positions.key(path) if key else self.positions.value(path)) or (
            None,
            None,
        )
        self.problems.append(
            Problem(
                dotted(path),
                message,
                line,
                column,
                "warning" if severity == "warning" else "error",
                hint,
            )
        )

    def _check_nul(self, data: Any) -> None:
        """YAML's ``"\\0"`` escape puts a NUL in a name, an id or a value, which PostgreSQL
        cannot store in text or JSON: refuse it here, with its position, not as a failed write.
        (A lone surrogate never gets this far: the YAML parser refuses ``"\\ud800"``.)
        Iterative, so a deeply nested document cannot make it recurse."""
        stack: list[tuple[Any, Path]] = [(data, ())]
        while stack:
            value, path = stack.pop()
            if isinstance(value, str):
                if "\x00" in value:
                    self.error(path, "text must not contain a NUL character")
            elif isinstance(value, Mapping):
                for k, v in value.items():
                    if isinstance(k, str) and "\x00" in k:
                        self.error((*path, k), "a key must not contain a NUL character", key=True)
                    stack.append((v, (*path, k)))
            elif isinstance(value, list):
                stack.extend((v, (*path, i)) for i, v in enumerate(value))

    # --- per node --------------------------------------------------------------------------

    def _check_node(self, node_id: str, node: Mapping[str, Any]) -> None:
        base: Path = ("nodes", node_id)
        type_name = node.get("type")
        params = node.get("params", {})
        node_type = self.registry.find(type_name) if isinstance(type_name, str) else None
        if isinstance(type_name, str) and type_name and node_type is None:
            close = self.registry.suggest(type_name)
            self.error(
                (*base, "type"),
                self.registry.unknown_message(type_name),
                None if close else f"available types: {', '.join(self.registry.names())}",
            )
        code_params: frozenset[str] = node_type.code_params if node_type else frozenset()
        if node_type is not None and isinstance(params, Mapping):
            validator = self.registry.params_validator(type_name)  # type: ignore[arg-type]
            self.problems.extend(
                schema_problems(
                    validator.iter_errors(params),
                    self.positions,
                    prefix=(*base, "params"),
                    skip_expressions=True,
                )
            )
            check = getattr(node_type, "check_params", None)
            if callable(check):
                for rel, message in check(params, self.base_path):
                    self.error((*base, "params", *rel), message)
            self._check_actions(node_id, node, node_type, params)
            self._check_edges_taken(node_id, node, node_type, params)
            self._check_subflows(node_id, node_type, params)
            tool_nodes = getattr(node_type, "tool_nodes", None)
            if callable(tool_nodes):
                for rel, target, chosen in tool_nodes(params):
                    path: Path = (*base, "params", *rel)
                    self.tool_refs.setdefault(target, []).append((node_id, path))
                    self._check_tool_params(path, target, chosen)
        if isinstance(params, Mapping):
            for path, text in _strings(params, (*base, "params"), code_params):
                self._check_expression(path, text)
            for name in sorted(code_params):
                if isinstance(params.get(name), str):
                    self._check_script((*base, "params", name), params[name], "function")
            nested = getattr(node_type, "nested_scripts", None)
            if callable(nested):
                for rel, code in nested(params):
                    self._check_script((*base, "params", *rel), code, "function")
        hooks = node.get("hooks")
        if isinstance(hooks, Mapping):
            for stage, code in hooks.items():
                if isinstance(code, str):
                    self._check_script((*base, "hooks", stage), code, "function")
        batch = node.get("batch")
        if isinstance(batch, Mapping) and "items" not in batch:
            self.error(
                (*base, "batch"),
                "batch without items: a list input becomes the items (the original flowrunner "
                "ran the node once); any other input runs the node once, with a warning",
                "write items: ${input} to say so, or remove batch",
                key=True,
                severity="warning",
            )
        if isinstance(batch, Mapping) and isinstance(batch.get("items"), str):
            items = batch["items"]
            if "${" not in items:
                self.error(
                    (*base, "batch", "items"),
                    "batch.items must be an expression like ${input.rows} or a list",
                )
            else:
                self._check_expression((*base, "batch", "items"), items)

    def _check_actions(
        self, node_id: str, node: Mapping[str, Any], node_type: Any, params: Mapping[str, Any]
    ) -> None:
        """An action the node is known to return, with no edge, ends the run there: legal,
        but when the node has other edges and no default it is most likely a typo."""
        nxt = node.get("next")
        declared = getattr(node_type, "declared_actions", None)
        if not isinstance(nxt, Mapping) or not nxt or "default" in nxt or not callable(declared):
            return
        for rel, action in declared(params):
            if action not in nxt:
                edges = ", ".join(str(a) for a in nxt)
                self.error(
                    ("nodes", node_id, "params", *rel),
                    f"action '{action}' has no next edge and there is no default: the run "
                    "would end here",
                    f"add it to next (edges: {edges}), or add a default edge",
                    severity="warning",
                )

    def _check_edges_taken(
        self, node_id: str, node: Mapping[str, Any], node_type: Any, params: Mapping[str, Any]
    ) -> None:
        """A ``next`` action the node type never returns (``success:`` after a transform) is
        an edge never taken: the author expects a route that will not happen."""
        nxt = node.get("next")
        possible = getattr(node_type, "possible_actions", None)
        hooks = node.get("hooks")
        if not isinstance(nxt, Mapping) or not callable(possible):
            return
        if isinstance(hooks, Mapping) and "post" in hooks:
            return  # a post hook may return any action
        declared = possible(params)
        if declared is None:
            return  # decided at run time (a condition's script, a sub-flow's ending)
        returns = ["default", *sorted(declared - {"default", "error"})]
        for action in nxt:
            if str(action) in returns:
                continue
            if str(action) == "error":
                continue  # every node takes its error edge when it fails
            close = difflib.get_close_matches(str(action), returns, n=1, cutoff=0.6)
            mean = f" — did you mean '{close[0]}'?" if close else ""
            self.error(
                ("nodes", node_id, "next", str(action)),
                f"a '{node.get('type')}' node never returns the action '{action}': this edge "
                f"is never taken{mean}",
                f"it returns {', '.join(returns)}, or error when it fails",
                key=True,
                severity="warning",
            )

    def _check_tool_params(self, path: Path, target: str, chosen: list[str] | None) -> None:
        """The params a model may fill on a node tool are params of the node's type, and not
        code: a model's text never becomes a script."""
        node = self.nodes.get(target)
        type_name = node.get("type") if node is not None else None
        node_type = self.registry.find(type_name) if isinstance(type_name, str) else None
        if node_type is None or chosen is None:
            return
        properties = node_type.params_schema.get("properties")
        known = properties if isinstance(properties, Mapping) else {}
        for index, name in enumerate(chosen):
            if name in node_type.code_params:
                self.error(
                    (*path[:-1], "params", index),
                    f"param '{name}' of '{target}' is code: a model cannot fill it",
                )
            elif known and name not in known:
                close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
                mean = f" — did you mean '{close[0]}'?" if close else ""
                self.error(
                    (*path[:-1], "params", index),
                    f"a '{type_name}' node has no param '{name}'{mean}",
                    None if close else f"its params: {', '.join(known)}",
                )

    def _check_splits(self) -> None:
        """A split needs a branch; its branches must meet at one join (or none); a batch
        would run the whole fan-out once per item, which no one means."""

        def next_of(node_id: str) -> Mapping[str, str]:
            nxt = self.nodes.get(node_id, {}).get("next")
            if not isinstance(nxt, Mapping):
                return {}
            return {str(a): t for a, t in nxt.items() if isinstance(t, str)}

        def type_of(node_id: str) -> str | None:
            node = self.nodes.get(node_id)
            return None if node is None else str(node.get("type"))

        met: set[str] = set()
        for node_id, node in self.nodes.items():
            if node.get("type") != SPLIT:
                continue
            met |= meeting_points(node_id, next_of, type_of)
            base: Path = ("nodes", node_id)
            if not branches_of(next_of, node_id, lambda i: i in self.nodes):
                self.error(
                    (*base, "type"),
                    "a split needs at least one next edge besides error: each one is a branch",
                    "add next: {a: first_node_of_a, b: first_node_of_b}",
                )
                continue
            if "batch" in node:
                self.error((*base, "batch"), "a split cannot be a batch node", key=True)
            joins = sorted(meeting_points(node_id, next_of, type_of))
            if len(joins) > 1:
                self.error(
                    (*base, "next"),
                    f"the branches of split '{node_id}' meet at {len(joins)} joins "
                    f"({', '.join(joins)}): they must all lead to the same one",
                    "point every branch's path at one join node, or at none",
                    key=True,
                )
        for node_id, node in self.nodes.items():
            if node.get("type") == JOIN and node_id not in met:
                self.error(
                    ("nodes", node_id, "type"),
                    f"no split's branches meet at join '{node_id}': its input will not be "
                    "branch outputs",
                    "lead the branches of a split here, or use another node type",
                    severity="warning",
                )

    def _check_subflows(self, node_id: str, node_type: Any, params: Mapping[str, Any]) -> None:
        """A sub-flow's own errors surface at the node that runs it."""
        paths = getattr(node_type, "subflow_paths", None)
        if self.subflows is None or self.base_path is None or not callable(paths):
            return
        for rel, name in paths(params):
            full = (self.base_path / name).resolve()
            if not full.is_file():
                continue  # check_params reports a missing file
            errors = [p for p in self.subflows(full) if p.severity == "error"]
            if errors:
                first = errors[0]
                recursion = first.path == "(recursion)"  # load.RECURSION (no import cycle)
                self.error(
                    ("nodes", node_id, "params", *rel),
                    first.message
                    if recursion
                    else f"sub-flow '{name}' is invalid: {first.message}",
                    "a flow cannot include itself, directly or through other flows"
                    if recursion
                    else str(first),
                )

    def _check_expression(self, path: Path, text: str) -> None:
        try:
            parts = split_template(text)
        except ExpressionError as exc:
            self.error(
                path,
                f"invalid expression: {exc.message}",
                "an expression is ${...}; write $${ for a literal ${",
            )
            return
        if self.scripts is None:
            return
        for part in parts:
            if not isinstance(part, Segment) or parse_path(part.code, SCOPE_NAMES) is not None:
                continue
            # The native subset is valid JavaScript by construction: no V8 check needed (a
            # flow with only such expressions loads without starting the syntax checker).
            if compile_expression(part.code, SCOPE_NAMES) is None:
                # Column of the code inside the string: after "${" and any leading blanks.
                raw = text[part.offset + 2 :]
                start = part.offset + 3 + len(raw) - len(raw.lstrip())
                self._check_script(path, part.code, "expression", start)

    def _check_script(
        self, path: Path, code: str, kind: SyntaxKind, column_in_text: int = 1
    ) -> None:
        """A script over the size limit, or a JavaScript syntax error, becomes a Problem (the
        latter at its own line:column in the file)."""
        if kind == "function":
            too_long = script_too_long(code, self.max_script_bytes)
            if too_long is not None:
                # Not syntax-checked: the check's cost grows with the script.
                self.error(path, too_long, "raise FLOWRUNNER_MAX_SCRIPT_BYTES to allow it")
                return
        if self.scripts is None:
            return
        if kind == "function" and compile_return(code, SCOPE_NAMES) is not None:
            return  # one `return <native expression>`: valid JavaScript by construction
        try:
            self.scripts.check_syntax(code, kind=kind)
        except ScriptError as exc:
            line, column = exc.line or 1, exc.column or 1
            if line == 1:  # an expression starts mid-string; a script at its first column
                column += column_in_text - 1
            at = self.positions.inside(path, line, column) or (None, None)
            self.problems.append(
                Problem(
                    dotted(path),
                    f"JavaScript syntax error: {exc.message}",
                    at[0],
                    at[1],
                    "error",
                    f"at line {exc.line or 1}, column {exc.column or 1} of the "
                    + ("expression" if kind == "expression" else "script"),
                )
            )
        except FlowrunnerError as exc:  # the checker itself failed: say so, do not block
            self.error(path, f"could not check the JavaScript syntax: {exc}", severity="warning")


def _strings(value: Any, path: Path, skip: frozenset[str]) -> Iterator[tuple[Path, str]]:
    """Every string in a params tree (top-level code params excluded) with its path."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            if k not in skip:
                yield from _strings(v, (*path, k), frozenset())
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, (*path, i), frozenset())
