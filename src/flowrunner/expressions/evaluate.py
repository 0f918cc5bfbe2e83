"""Compiled ``${...}`` templates and parameter trees, resolved against a run's scope.

Compile once (at flow compile time), resolve many times (every node visit). A compiled value
is a small tree of resolvers: static parts are copied, plain paths are followed natively, and
anything else is handed to an optional JavaScript evaluator.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from flowrunner.errors import ExpressionError, FlowrunnerError
from flowrunner.expressions.jsnative import NotNative, Program, compile_expression
from flowrunner.expressions.paths import Key, parse_path, resolve_path
from flowrunner.expressions.template import Segment, has_expression, split_template

# Names a ``${...}`` may start from; ``item``/``index`` exist inside batch nodes only.
SCOPE_NAMES = frozenset(
    {"input", "shared", "results", "params", "execution", "error", "secrets", "item", "index"}
)


_SCALARS = frozenset({str, int, float, bool, type(None)})


class JSEvaluator(Protocol):
    """Evaluates a JavaScript expression with ``scope``'s names as variables (the sandbox)."""

    async def evaluate_expression(self, code: str, scope: Mapping[str, Any]) -> Any: ...


class Expression:
    """The code of one ``${...}``: a plain path, else a native program (``jsnative``) that
    gives V8's answer where it is certain, else JavaScript."""

    __slots__ = ("code", "keys", "program", "root", "where")

    def __init__(self, code: str, where: str) -> None:
        self.code = code
        self.where = where
        parsed = parse_path(code, SCOPE_NAMES)
        self.root: str | None = parsed[0] if parsed else None
        self.keys: tuple[Key, ...] = parsed[1] if parsed else ()
        # Plain paths keep their own (optional-chaining) semantics; the rest is JavaScript,
        # evaluated here when the text is in the native subset.
        self.program: Program | None = (
            compile_expression(code, SCOPE_NAMES) if parsed is None else None
        )

    @property
    def native(self) -> bool:
        """Whether no evaluation can need JavaScript (a native program may still, for some
        values: an object in arithmetic, a method...)."""
        return self.root is not None

    def evaluate_native(self, scope: Mapping[str, Any]) -> Any:
        if self.root is not None:
            return resolve_path(scope.get(self.root), self.keys)
        if self.program is not None:
            try:
                return self.program.evaluate(scope)
            except NotNative:
                pass
        raise ExpressionError(
            f"{self._label()} needs JavaScript, but no JavaScript evaluator is configured "
            "(only plain paths like input.a.b[0] and simple operators on primitive values "
            "are evaluated natively)",
            expression=self.code,
        )

    async def evaluate(self, scope: Mapping[str, Any], js: JSEvaluator | None) -> Any:
        if self.root is not None:
            return resolve_path(scope.get(self.root), self.keys)
        if self.program is not None:
            try:
                return self.program.evaluate(scope)
            except NotNative:
                pass  # the values take it outside the native subset: V8 decides
        if js is None:
            return self.evaluate_native(scope)
        try:
            return await js.evaluate_expression(self.code, scope)
        except FlowrunnerError as exc:
            raise ExpressionError(f"{self._label()} failed: {exc}", expression=self.code) from exc

    def _label(self) -> str:
        prefix = f"{self.where}: " if self.where else ""
        return f"{prefix}expression ${{{self.code}}}"


class Resolver(ABC):
    """A compiled parameter value; ``needs_js`` tells whether ``resolve`` may be used."""

    __slots__ = ("needs_js",)

    def __init__(self, needs_js: bool) -> None:
        self.needs_js = needs_js

    @abstractmethod
    def resolve(self, scope: Mapping[str, Any]) -> Any:
        """Resolve without JavaScript (raises ExpressionError if an expression needs it)."""

    async def aresolve(self, scope: Mapping[str, Any], js: JSEvaluator | None) -> Any:
        """Resolve, using ``js`` for expressions that are not plain paths."""
        return self.resolve(scope)


class Static(Resolver):
    """A value with no expressions; each resolution gets its own mutable copy."""

    __slots__ = ("scalar", "value")

    def __init__(self, value: Any) -> None:
        super().__init__(False)
        self.value = value
        self.scalar = type(value) in _SCALARS  # immutable: no copy needed

    def resolve(self, scope: Mapping[str, Any]) -> Any:
        return self.value if self.scalar else thaw(self.value)


class Whole(Resolver):
    """``"${expr}"``: the expression's value with its own type."""

    __slots__ = ("expr",)

    def __init__(self, expr: Expression) -> None:
        super().__init__(not expr.native)
        self.expr = expr

    def resolve(self, scope: Mapping[str, Any]) -> Any:
        return self.expr.evaluate_native(scope)

    async def aresolve(self, scope: Mapping[str, Any], js: JSEvaluator | None) -> Any:
        return await self.expr.evaluate(scope, js)


class Interpolated(Resolver):
    """Text with expressions inside: each value is rendered as text (see ``to_text``)."""

    __slots__ = ("parts",)

    def __init__(self, parts: list[str | Expression]) -> None:
        super().__init__(any(isinstance(p, Expression) and not p.native for p in parts))
        self.parts = parts

    def resolve(self, scope: Mapping[str, Any]) -> Any:
        return "".join(
            [p if type(p) is str else to_text(p.evaluate_native(scope)) for p in self.parts]  # type: ignore[union-attr]
        )

    async def aresolve(self, scope: Mapping[str, Any], js: JSEvaluator | None) -> Any:
        out = []
        for p in self.parts:
            out.append(p if isinstance(p, str) else to_text(await p.evaluate(scope, js)))
        return "".join(out)


class MappingResolver(Resolver):
    __slots__ = ("dynamic", "items", "scalars")

    def __init__(self, items: dict[str, Resolver]) -> None:
        super().__init__(any(r.needs_js for r in items.values()))
        self.items = items
        # Immutable constants come with one C-level dict copy (keys in their written order,
        # the others as placeholders); only the rest is resolved per call.
        self.scalars: dict[str, Any] = {}
        dynamic = []
        for key, resolver in items.items():
            constant = isinstance(resolver, Static) and resolver.scalar
            self.scalars[key] = (
                resolver.value if isinstance(resolver, Static) and constant else None
            )
            if not constant:
                dynamic.append((key, resolver))
        self.dynamic = tuple(dynamic)

    def resolve(self, scope: Mapping[str, Any]) -> Any:
        out = self.scalars.copy()
        for key, resolver in self.dynamic:
            out[key] = resolver.resolve(scope)
        return out

    async def aresolve(self, scope: Mapping[str, Any], js: JSEvaluator | None) -> Any:
        if not self.needs_js:
            return self.resolve(scope)
        out = self.scalars.copy()
        for key, resolver in self.dynamic:
            out[key] = await resolver.aresolve(scope, js)
        return out


class ListResolver(Resolver):
    __slots__ = ("items",)

    def __init__(self, items: list[Resolver]) -> None:
        super().__init__(any(r.needs_js for r in items))
        self.items = items

    def resolve(self, scope: Mapping[str, Any]) -> Any:
        return [r.resolve(scope) for r in self.items]

    async def aresolve(self, scope: Mapping[str, Any], js: JSEvaluator | None) -> Any:
        if not self.needs_js:
            return self.resolve(scope)
        return [await r.aresolve(scope, js) for r in self.items]


def compile_template(text: str, where: str = "") -> Resolver:
    """Compile one string; raises ExpressionError (naming ``where``) on bad syntax."""
    if not has_expression(text):
        return Static(text)
    try:
        parts = split_template(text)
    except ExpressionError as exc:
        prefix = f"{where}: " if where else ""
        raise ExpressionError(f"{prefix}{exc.message}", expression=text) from exc
    if len(parts) == 1 and isinstance(parts[0], Segment):
        return Whole(Expression(parts[0].code, where))
    compiled = [p if isinstance(p, str) else Expression(p.code, where) for p in parts]
    if not any(isinstance(p, Expression) for p in compiled):
        return Static("".join(p for p in compiled if isinstance(p, str)))
    return Interpolated(compiled)


def compile_value(
    value: Any, label: str = "", *, skip: frozenset[str] = frozenset(), path: str = ""
) -> Resolver:
    """Compile a parameter tree; top-level keys in ``skip`` (code params) stay verbatim.

    ``label`` names the owner in error messages (``node 'fetch'``); ``path`` is the param
    path of ``value`` inside the tree (built up while recursing).
    """
    if isinstance(value, str):
        where = ", ".join(x for x in (label, f"param '{path}'" if path else "") if x)
        return compile_template(value, where)
    if isinstance(value, Mapping):
        items = {
            str(k): Static(v)
            if k in skip
            else compile_value(v, label, path=f"{path}.{k}" if path else str(k))
            for k, v in value.items()
        }
        if all(isinstance(r, Static) for r in items.values()):
            return Static(value)
        return MappingResolver(items)
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        seq = [compile_value(v, label, path=f"{path}[{i}]") for i, v in enumerate(value)]
        if all(isinstance(r, Static) for r in seq):
            return Static(value)
        return ListResolver(seq)
    return Static(value)


def thaw(value: Any) -> Any:
    """A plain mutable deep copy of JSON-like data (read-only mappings and tuples included)."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [thaw(v) for v in value]
    return value


def to_text(value: Any) -> str:
    """How a value appears inside interpolated text, following JavaScript where it matters."""
    kind = type(value)  # exact-type checks first: ABC isinstance checks are slow
    if kind is str:
        return value  # type: ignore[no-any-return]
    if kind is int:
        return str(value)
    if value is None:
        return ""
    if kind is bool:
        return "true" if value else "false"
    if kind is float and value.is_integer():
        return str(int(value))
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(thaw(value), separators=(",", ":"), ensure_ascii=False, default=str)
    return str(value)
