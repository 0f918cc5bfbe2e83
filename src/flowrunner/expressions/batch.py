"""A node's JavaScript expressions in one sandbox call instead of one call each.

``js_expressions`` lists, once at compile time, the distinct expressions of a compiled value
that may need JavaScript; at each visit ``v8_codes`` keeps those whose native program (see
``jsnative``) cannot answer for this scope, and ``Prefetched`` is a ``JSEvaluator``
answering from values a host computed for all of them in one round trip
(``ManyJSEvaluator.evaluate_expressions``). Resolving the value against ``Prefetched`` then
takes the exact path it takes against the sandbox itself (native answers first, same
interpolation, same error for the first failing expression in document order).

A node with a prep hook can go one step further and send its expressions and the hook in one
call: the hook needs the resolved params, so the value is first resolved against ``Slots``
(each V8 expression answers with a ``Slot``, a marker no data can hold), ``slot_places``
finds where the markers landed, and the host fills the values in there before it runs the
hook. Only a whole-value expression (``Whole``) can be a slot: a marker cannot stand for a
value inside interpolated text, so a node whose V8 expression at a visit is one of
``interpolated_codes`` does not join. With the values back, ``fill_slots`` puts them where
``Whole`` would have put them; if one failed, resolving against ``Prefetched`` raises the
error the resolver raises (the first failing expression in document order).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from flowrunner.errors import FlowrunnerError
from flowrunner.expressions.evaluate import (
    Expression,
    Interpolated,
    JSEvaluator,
    ListResolver,
    MappingResolver,
    Resolver,
    Whole,
)
from flowrunner.expressions.jsnative import NotNative


class ManyJSEvaluator(JSEvaluator, Protocol):
    """A ``JSEvaluator`` that can also evaluate several expressions in one call: a list with
    each expression's value, or the ``FlowrunnerError`` it failed with, in order."""

    async def evaluate_expressions(
        self, codes: Sequence[str], scope: Mapping[str, Any]
    ) -> list[Any]: ...


def js_expressions(resolver: Resolver) -> tuple[Expression, ...]:
    """``resolver``'s expressions that may need JavaScript, one per distinct code, in order."""
    found: dict[str, Expression] = {}
    _collect(resolver, found)
    return tuple(found.values())


def v8_codes(expressions: Sequence[Expression], scope: Mapping[str, Any]) -> list[str]:
    """The codes among ``expressions`` that V8 must evaluate for ``scope``: no native
    program, or one that declines these values."""
    codes = []
    for expr in expressions:
        program = expr.program
        if program is not None:
            try:
                program.evaluate(scope)
                continue
            except NotNative:
                pass
        codes.append(expr.code)
    return codes


def _collect(resolver: Resolver, found: dict[str, Expression]) -> None:
    if not resolver.needs_js:
        return
    if isinstance(resolver, Whole):
        _add(resolver.expr, found)
    elif isinstance(resolver, Interpolated):
        for part in resolver.parts:
            if isinstance(part, Expression):
                _add(part, found)
    elif isinstance(resolver, MappingResolver):
        for _, child in resolver.dynamic:
            _collect(child, found)
    elif isinstance(resolver, ListResolver):
        for child in resolver.items:
            _collect(child, found)


def _add(expr: Expression, found: dict[str, Expression]) -> None:
    if not expr.native:
        found.setdefault(expr.code, expr)


class Prefetched:
    """Answers ``evaluate_expression`` from values computed beforehand (a failure is raised
    when its expression is reached, as the live call would have raised it)."""

    __slots__ = ("_js", "_values")

    def __init__(self, codes: Sequence[str], values: Sequence[Any], js: JSEvaluator) -> None:
        self._values = dict(zip(codes, values, strict=True))
        self._js = js  # for an expression not fetched (none, when the scope is the same)

    async def evaluate_expression(self, code: str, scope: Mapping[str, Any]) -> Any:
        if code not in self._values:
            return await self._js.evaluate_expression(code, scope)
        value = self._values[code]
        if isinstance(value, FlowrunnerError):
            raise value
        return value


async def prefetch(
    codes: Sequence[str], scope: Mapping[str, Any], js: ManyJSEvaluator
) -> Prefetched:
    """Every expression of ``codes`` evaluated in one call of ``js``; a failure of the call
    itself (a timeout, a dead worker) becomes every expression's, so it surfaces naming the
    first expression reached, as it did when each was its own call."""
    try:
        values = await js.evaluate_expressions(codes, scope)
    except FlowrunnerError as exc:
        values = [exc] * len(codes)
    return Prefetched(codes, values, js)


ParamPath = tuple[str | int, ...]


def whole_places(resolver: Resolver) -> tuple[tuple[ParamPath, str], ...]:
    """Where each whole-value expression that may need JavaScript puts its value: (path in
    the resolved value, code), in document order."""
    found: list[tuple[ParamPath, str]] = []
    _places(resolver, (), found)
    return tuple(found)


def _places(resolver: Resolver, path: ParamPath, found: list[tuple[ParamPath, str]]) -> None:
    if not resolver.needs_js:
        return
    if isinstance(resolver, Whole):
        found.append((path, resolver.expr.code))
    elif isinstance(resolver, MappingResolver):
        for key, child in resolver.dynamic:
            _places(child, (*path, key), found)
    elif isinstance(resolver, ListResolver):
        for index, child in enumerate(resolver.items):
            _places(child, (*path, index), found)


def interpolated_codes(resolver: Resolver) -> frozenset[str]:
    """The codes of expressions that may need JavaScript and sit inside interpolated text."""
    found: set[str] = set()
    _interpolated(resolver, found)
    return frozenset(found)


def _interpolated(resolver: Resolver, found: set[str]) -> None:
    if not resolver.needs_js:
        return
    if isinstance(resolver, Interpolated):
        found.update(p.code for p in resolver.parts if isinstance(p, Expression) and not p.native)
    elif isinstance(resolver, MappingResolver):
        for _, child in resolver.dynamic:
            _interpolated(child, found)
    elif isinstance(resolver, ListResolver):
        for child in resolver.items:
            _interpolated(child, found)


class Slot:
    """Stands in the resolved value for the value of expression ``index`` of a ``Slots``."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index


class Slots:
    """Answers each of ``codes`` with its ``Slot`` (any other code goes to ``js``)."""

    __slots__ = ("_js", "index")

    def __init__(self, codes: Sequence[str], js: JSEvaluator) -> None:
        self.index = {code: i for i, code in enumerate(codes)}
        self._js = js

    async def evaluate_expression(self, code: str, scope: Mapping[str, Any]) -> Any:
        if code in self.index:
            return Slot(self.index[code])
        return await self._js.evaluate_expression(code, scope)


def slot_places(
    value: Any, places: Sequence[tuple[ParamPath, str]]
) -> list[tuple[ParamPath, int]] | None:
    """Each slot of ``value`` (resolved against ``Slots``) as (path, expression index), the
    slot replaced by None in place, so ``value`` is plain data. A place that holds something
    else is skipped (the agent's tool arguments replaced it: that value is not used, as
    before). None when the whole value is one slot.

    Slots can only be at ``places``: a ``Slot`` is returned by a ``Whole`` alone, and an
    interpolated one is ruled out by the caller (``interpolated_codes``).
    """
    found: list[tuple[ParamPath, int]] = []
    for path, _ in places:
        if not path:
            if isinstance(value, Slot):
                return None
            continue
        parent = value
        for key in path[:-1]:
            parent = _step(parent, key)
        slot = _step(parent, path[-1])
        if isinstance(slot, Slot):
            found.append((path, slot.index))
            parent[path[-1]] = None
    return found


def fill_slots(value: Any, places: Sequence[tuple[ParamPath, int]], values: Sequence[Any]) -> None:
    """Put expression ``index``'s value at each ``(path, index)`` of ``places`` (found by
    ``slot_places`` in ``value``), as resolving put it there: one object for every place of
    one expression, as ``Prefetched`` gives."""
    for path, index in places:
        parent = value
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = values[index]


def _step(value: Any, key: str | int) -> Any:
    if isinstance(value, dict) and isinstance(key, str):
        return value.get(key)
    if isinstance(value, list) and isinstance(key, int) and key < len(value):
        return value[key]
    return None
