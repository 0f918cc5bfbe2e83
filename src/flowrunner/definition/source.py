"""YAML text → plain data plus the line:column of every value and key.

``yaml.compose`` gives the node tree with marks; we build the data ourselves from it so that
every path (a tuple of keys and indices) maps to its 1-based position, duplicate keys are
reported with the position of the second one (without hiding the document's other
problems), and aliases cannot blow up memory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from flowrunner.definition import scalars
from flowrunner.errors import Problem

Path = tuple[str | int, ...]
Position = tuple[int, int]

_CORE_TAGS = frozenset({scalars.NULL, scalars.BOOL, scalars.INT, scalars.FLOAT})
_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
_PLAIN_TAGS = frozenset({*_CORE_TAGS, _STR})
_NUMBER_TAGS = frozenset({scalars.INT, scalars.FLOAT})
_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[misc,valid-type]  # the C loader when available
    """The safe loader with YAML 1.2 core-schema resolution of plain scalars (``scalars``)."""

    yaml_implicit_resolvers: dict[str | None, list[tuple[str, re.Pattern[str]]]] = {}


for _tag, _pattern, _first in scalars.CORE:
    _Loader.add_implicit_resolver(_tag, _pattern, list(_first))
# `<<` merge keys stay a YAML feature the original's files use.
_Loader.add_implicit_resolver(_MERGE, re.compile(r"^(?:<<)$"), ["<"])
# Aliases make a small text expand exponentially ("billion laughs"); a flow never needs this many.
MAX_NODES = 200_000
MAX_DEPTH = 64  # deeper nesting is never a real flow, and would exhaust the Python stack


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
    # Plain values the original flowrunner (yaml.v2, YAML 1.1) read differently, as warnings
    # with the path of each; the caller picks the ones that matter to it.
    reread: list[tuple[Path, Problem]] = field(default_factory=list)
    # The text of each plain scalar read as a number, for fields that are text (a version
    # `1.10` stays "1.10", as the original kept it, not "1.1").
    numbers: dict[Path, str] = field(default_factory=dict)


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
    data = builder.build(root, ())
    return ParsedSource(data, positions, builder.problems, builder.reread, builder.numbers)


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
        self.reread: list[tuple[Path, Problem]] = []
        self.numbers: dict[Path, str] = {}

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
            # Keys are names: the original read them as text too (into string-keyed maps).
            key = self._scalar(key_node, path, compare=False)
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

    def _scalar(self, node: ScalarNode, path: Path, *, compare: bool = True) -> Any:
        if node.tag == _MERGE:
            return node.value  # `<<` outside a merge key (flatten_mapping took those) is text
        try:
            if not node.style and node.tag in _PLAIN_TAGS:  # plain: None, or "" (C loader)
                # Resolved by the YAML 1.2 core schema (the loader's resolver), or tagged
                # explicitly (`!!int 12`), which the same construction reads.
                value = node.value if node.tag == _STR else scalars.construct(node.tag, node.value)
                if compare:
                    self._compare_with_original(node, path, value)
                    if node.tag in _NUMBER_TAGS:
                        self.numbers[path] = node.value
                return value
            value = self.constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError) as exc:
            raise self._error(node, path, f"cannot read value: {exc}") from exc
        if isinstance(value, bytes):
            raise self._error(node, path, "binary values are not supported")
        if not isinstance(value, str | int | float | bool | None):
            return node.value  # an explicit !!timestamp, !!set...: keep the text written
        return value

    def _compare_with_original(self, node: ScalarNode, path: Path, value: Any) -> None:
        """Warn where the original (yaml.v2, YAML 1.1) read this value differently."""
        text = node.value
        if not text or text[0] not in "-+.0123456789yYnNoO":
            return  # cheap exit: only these can be a YAML 1.1 boolean or number
        if node.tag == _STR and scalars.core_tag(text) is not None:
            return  # tagged `!!str` explicitly: text for the original too
        before = scalars.original_value(text)
        if scalars.same(before, value):
            return
        line, column = _pos(node)
        now = "text" if isinstance(value, str) else scalars.describe(value)
        self.reread.append(
            (
                path,
                Problem(
                    dotted(path),
                    f"'{text}' is {now} (YAML 1.2); the original flowrunner read it as "
                    f"{scalars.describe(before)}",
                    line,
                    column,
                    "warning",
                    f"write {scalars.literal(before)} for the original's value, or quote it "
                    f"('{text}') for the text",
                ),
            )
        )

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
