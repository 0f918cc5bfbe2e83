"""YAML text → plain data plus the line:column of every value and key.

``yaml.compose`` gives the node tree with marks; we build the data ourselves from it so that
every path (a tuple of keys and indices) maps to its 1-based position, duplicate keys are
reported with the position of the second one (without hiding the document's other
problems), and aliases cannot blow up memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from flowrunner.errors import Problem

Path = tuple[str | int, ...]
Position = tuple[int, int]

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Aliases make a small text expand exponentially ("billion laughs"); a flow never needs this many.
MAX_NODES = 200_000
MAX_DEPTH = 64  # deeper nesting is never a real flow, and would exhaust the Python stack
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_BOOL = "tag:yaml.org,2002:bool"
_NUMBERS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")


@dataclass(slots=True)
class SourceMap:
    """Where each path's value (and, for mapping entries, its key) starts in the text."""

    values: dict[Path, Position] = field(default_factory=dict)
    keys: dict[Path, Position] = field(default_factory=dict)
    # Where the text of a string value starts: after the quote, or on the first line of a
    # block scalar (`|`) at its indentation. Lets a script's own line:column be located.
    texts: dict[Path, tuple[Position, bool]] = field(default_factory=dict)

    def inside(self, path: Path, line: int, column: int) -> Position | None:
        """The document position of ``line``:``column`` (1-based) inside a string value."""
        if path not in self.texts:
            return self.value(path)
        (first, col), block = self.texts[path]
        if block:
            return (first + line - 1, col + column - 1)
        return (first, col + column - 1) if line == 1 else (first + line - 1, column)

    def value(self, path: Path) -> Position | None:
        """The position of ``path``'s value, else of its nearest ancestor that has one."""
        return _nearest(self.values, path)

    def key(self, path: Path) -> Position | None:
        """The position of ``path``'s key, falling back to the value's position."""
        if path in self.keys:
            return self.keys[path]
        return self.value(path)


@dataclass(frozen=True, slots=True)
class ParsedSource:
    data: Any
    positions: SourceMap
    # Errors that do not stop reading (duplicate keys: the first value is kept), reported
    # together with everything validation finds.
    problems: list[Problem] = field(default_factory=list)


class SourceError(Exception):
    """The text is not a YAML document we can read; carries the Problem to report."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def dotted(path: Path) -> str:
    """``("nodes", "a", "next", "error")`` → ``nodes.a.next.error``; indices as ``[0]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(document)"


def parse_yaml(text: str) -> ParsedSource:
    """Parse one YAML document; raises SourceError for syntax errors. Duplicate keys are in
    the result's ``problems`` (the first value is kept)."""
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        raise SourceError(_syntax_problem(exc)) from exc
    except yaml.YAMLError as exc:  # reader errors (bad characters) carry no mark object
        raise SourceError(Problem("(document)", f"YAML error: {exc}", 1, 1)) from exc
    positions = SourceMap()
    if root is None:
        return ParsedSource(None, positions)
    builder = _Builder(positions, text.splitlines())
    return ParsedSource(builder.build(root, ()), positions, builder.problems)


def _syntax_problem(exc: yaml.MarkedYAMLError) -> Problem:
    """Where the parser gave up and, when it was inside a construct (a quoted string, a
    ``{...}`` mapping), where that construct began: the unclosed quote is usually there."""
    problem = exc.problem or exc.context or "invalid YAML"
    at = _mark(exc.problem_mark) or _mark(exc.context_mark)
    began = _mark(exc.context_mark) if exc.problem else None
    context = exc.context or ""
    for prefix in ("while scanning ", "while parsing "):
        if context.startswith(prefix) and not context.startswith(f"{prefix}for "):
            what = context[len(prefix) :]
            break
    else:
        what = ""
    if not what or began is None or began == at:
        return Problem("(document)", f"YAML syntax error: {problem}", *(at or (None, None)))
    the = f"the {what[2:]}" if what.startswith("a ") else what
    start = f"{began[0]}:{began[1]}"
    if "end of stream" in problem:
        # The file ended inside it: point at its start, not at the end of the file.
        return Problem(
            "(document)",
            f"YAML syntax error: {the} that starts at {start} is never closed",
            *began,
            hint=f"the parser reached the end of the file (line {at[0]}) looking for its end"
            if at
            else None,
        )
    return Problem(
        "(document)",
        f"YAML syntax error: {problem}, in {the} that starts at {start}",
        *(at or began),
    )


def _mark(mark: yaml.Mark | None) -> Position | None:
    return (mark.line + 1, mark.column + 1) if mark is not None else None


class _Builder:
    def __init__(self, positions: SourceMap, lines: list[str]) -> None:
        self.positions = positions
        self.lines = lines
        self.constructor = SafeConstructor()
        self.count = 0
        self.active: set[int] = set()
        self.problems: list[Problem] = []

    def build(self, node: Node, path: Path) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise self._error(node, path, f"document too large (over {MAX_NODES} values)")
        if len(path) > MAX_DEPTH:
            raise self._error(node, path, f"values nested deeper than {MAX_DEPTH} levels")
        self.positions.values.setdefault(path, _pos(node))
        if isinstance(node, ScalarNode):
            value = self._scalar(node, path)
            if isinstance(value, str):
                self._locate_text(node, path)
            return value
        if id(node) in self.active:
            raise self._error(node, path, "recursive alias: a value contains itself")
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            if isinstance(node, MappingNode):
                return self._mapping(node, path)
            raise self._error(node, path, f"unsupported YAML node {type(node).__name__}")
        finally:
            self.active.discard(id(node))

    def _mapping(self, node: MappingNode, path: Path) -> dict[str, Any]:
        self.constructor.flatten_mapping(node)  # resolves `<<: *anchor` merge keys
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                raise self._error(key_node, path, "a mapping key must be a plain value")
            key = self._scalar(key_node, path)
            if not isinstance(key, str):
                # YAML reads `1:` or `true:` as non-strings; ids and actions are names.
                key = str(key).lower() if isinstance(key, bool) else str(key)
            child = (*path, key)
            if key in out:
                line, column = _pos(key_node)
                first = self.positions.keys.get(child)
                where = f" (first defined at line {first[0]})" if first else ""
                self.problems.append(
                    Problem(
                        dotted(child),
                        f"duplicate key '{key}'{where}",
                        line,
                        column,
                        hint="rename or remove one: only the first is checked",
                    )
                )
                continue
            self.positions.keys[child] = _pos(key_node)
            out[key] = self.build(value_node, child)
        return out

    def _locate_text(self, node: ScalarNode, path: Path) -> None:
        line, column = _pos(node)
        if node.style in ("|", ">"):
            # Content starts on the line after the indicator, at the block's indentation.
            for index in range(line, len(self.lines)):
                text = self.lines[index]
                if text.strip():
                    indent = len(text) - len(text.lstrip(" "))
                    self.positions.texts[path] = ((line + 1, indent + 1), True)
                    return
            return
        quoted = node.style in ("'", '"')
        self.positions.texts[path] = ((line, column + (1 if quoted else 0)), False)

    def _scalar(self, node: ScalarNode, path: Path) -> Any:
        if node.tag == _TIMESTAMP:
            return node.value  # keep dates as the text written; values must stay JSON-like
        # YAML 1.2 scalars, as the original (Go, yaml.v3) reads them: `no`, `on`, `y` are
        # text, not booleans, and `1:30` is text, not a base-60 number.
        if node.tag == _BOOL and node.value.lower() not in ("true", "false"):
            return node.value
        if node.tag in _NUMBERS and ":" in node.value:
            return node.value
        try:
            value = self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            raise self._error(node, path, f"cannot read value: {exc}") from exc
        if isinstance(value, bytes):
            raise self._error(node, path, "binary values are not supported")
        return value

    def _error(self, node: Node, path: Path, message: str) -> SourceError:
        line, column = _pos(node)
        return SourceError(Problem(dotted(path), message, line, column))


def _pos(node: Node) -> Position:
    mark = node.start_mark
    return (mark.line + 1, mark.column + 1)


def _nearest(table: dict[Path, Position], path: Path) -> Position | None:
    while True:
        if path in table:
            return table[path]
        if not path:
            return None
        path = path[:-1]
