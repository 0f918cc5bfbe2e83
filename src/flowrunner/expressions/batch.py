"""A node's JavaScript expressions in one sandbox call instead of one call each.

``js_expressions`` lists, once at compile time, the distinct expressions of a compiled value
that may need JavaScript; at each visit ``v8_codes`` keeps those whose native program (see
``jsnative``) cannot answer for this scope, and ``Prefetched`` is a ``JSEvaluator``
answering from values a host computed for all of them in one round trip
(``ManyJSEvaluator.evaluate_expressions``). Resolving the value against ``Prefetched`` then
takes the exact path it takes against the sandbox itself (native answers first, same
interpolation, same error for the first failing expression in document order).
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
