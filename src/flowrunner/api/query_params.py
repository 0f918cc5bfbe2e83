"""A query parameter given more than once is refused where the route takes a single value.

FastAPI keeps the last of ``?name=a&name=b`` for a scalar parameter and drops the others
silently: a client that meant a filter on both values gets a filter on one, and no error. This
app-wide dependency answers such a request with the same 422 as any other malformed query,
naming the parameter. Parameters declared as lists (``tag`` on ``GET /flows``) repeat freely.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from types import UnionType
from typing import Any, Union, get_args, get_origin

from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.requests import HTTPConnection


async def single_valued_query(connection: HTTPConnection) -> None:
    """Refuses a repeated query parameter the matched route declares as a single value."""
    query = connection.query_params
    if len(query) == len(query.multi_items()):
        return  # no name repeats: the common case costs one comparison
    single = _single_valued_names(connection.scope.get("route"))
    counts = Counter(name for name, _ in query.multi_items())
    errors = [
        {
            "type": "repeated_value",
            "loc": ("query", name),
            "msg": f"given {times} times; this parameter takes one value",
            "input": query.getlist(name),
        }
        for name, times in counts.items()
        if times > 1 and name in single
    ]
    if errors:
        raise RequestValidationError(errors)


def _single_valued_names(route: Any) -> frozenset[str]:
    # Worked out on the rare request that repeats a name, so nothing is cached. Names the
    # route does not declare are ignored as before, repeated or not.
    if not isinstance(route, APIRoute | APIWebSocketRoute):
        return frozenset()
    return frozenset(_scalar_params(route.dependant))


def _scalar_params(dependant: Dependant) -> Iterator[str]:
    for param in dependant.query_params:
        if not _is_list(param.field_info.annotation):
            yield param.alias
    for sub in dependant.dependencies:
        yield from _scalar_params(sub)


def _is_list(annotation: Any) -> bool:
    origin = get_origin(annotation)
    if origin in (Union, UnionType):
        return any(_is_list(arg) for arg in get_args(annotation))
    if origin is None:
        return False
    return isinstance(origin, type) and issubclass(origin, Sequence | set | frozenset)
