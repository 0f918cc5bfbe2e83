"""A node's JavaScript expressions in one sandbox call instead of one call each.

``js_codes`` lists, once at compile time, the distinct expressions of a compiled value that
need JavaScript; ``Prefetched`` is a ``JSEvaluator`` answering from values a host computed
for all of them in one round trip (``ManyJSEvaluator.evaluate_expressions``). Resolving the
value against ``Prefetched`` then takes the exact path it takes against the sandbox itself
(same interpolation, same error for the first failing expression in document order).
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


class ManyJSEvaluator(JSEvaluator, Protocol):
    """A ``JSEvaluator`` that can also evaluate several expressions in one call: a list with
    each expression's value, or the ``FlowrunnerError`` it failed with, in order."""

    async def evaluate_expressions(
        self, codes: Sequence[str], scope: Mapping[str, Any]
    ) -> list[Any]: ...


def js_codes(resolver: Resolver) -> tuple[str, ...]:
    """The distinct codes of ``resolver``'s expressions that need JavaScript, in order."""
    found: dict[str, None] = {}
    _collect(resolver, found)
    return tuple(found)


def _collect(resolver: Resolver, found: dict[str, None]) -> None:
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


def _add(expr: Expression, found: dict[str, None]) -> None:
    if not expr.native:
        found[expr.code] = None


class Prefetched:
    """Answers ``evaluate_expression`` from values computed beforehand (a failure is raised
    when its expression is reached, as the live call would have raised it)."""

    __slots__ = ("_values",)

    def __init__(self, codes: Sequence[str], values: Sequence[Any]) -> None:
        self._values = dict(zip(codes, values, strict=True))

    async def evaluate_expression(self, code: str, scope: Mapping[str, Any]) -> Any:
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
    return Prefetched(codes, values)
