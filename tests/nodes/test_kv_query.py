"""The query language of the key-value nodes: filter operators, sort, malformed input."""

from __future__ import annotations

from typing import Any

import pytest

from flowrunner.nodes.kv_query import QueryError, check_filter, matches, sort_fields, sort_rows

DOC = {"status": "open", "n": 3, "tags": ["a", "b"], "title": "Billing issue", "who": {"c": "FR"}}


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ({"status": "open"}, True),
        ({"status": "closed"}, False),
        ({"who.c": "FR"}, True),
        ({"who.c": {"$ne": "FR"}}, False),
        ({"missing": {"$ne": 1}}, True),
        ({"missing": {"$eq": None}}, False),
        ({"n": {"$gt": 2, "$lte": 3}}, True),
        ({"n": {"$gte": 4}}, False),
        ({"n": {"$lt": "9"}}, False),  # a number against text: never a match
        ({"n": {"$in": [1, 3]}}, True),
        ({"n": {"$in": [True]}}, False),  # true is not 1
        ({"tags": {"$contains": "b"}}, True),
        ({"title": {"$contains": "Bill"}}, True),
        ({"title": {"$contains": "bill"}}, False),
        ({"status": "open", "n": {"$gt": 5}}, False),
    ],
)
def test_filter_operators(where: dict[str, Any], expected: bool) -> None:
    check_filter(where)
    assert matches(DOC, where) is expected


def test_values_that_are_not_objects_match_only_an_empty_filter() -> None:
    assert matches(5, None)
    assert not matches(5, {"n": 5})
    assert not matches(["open"], {"status": "open"})


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ([1], "filter must be a mapping"),
        ({"n": {"$near": 1}}, "filter.n: unknown operator '\\$near'"),
        ({"n": {"$in": 3}}, "filter.n.\\$in must be a list"),
    ],
)
def test_malformed_filters_are_named(where: Any, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        check_filter(where)


def test_sort_by_fields_descending_and_missing_last() -> None:
    rows = [{"p": 1, "n": "b"}, {"n": "a"}, {"p": 3, "n": "c"}, {"p": 1, "n": "a"}]
    sort_rows(rows, sort_fields(["-p", "n"]), lambda r: r)
    assert rows == [{"p": 3, "n": "c"}, {"p": 1, "n": "a"}, {"p": 1, "n": "b"}, {"n": "a"}]
    with pytest.raises(QueryError, match="sort must be a field name"):
        sort_fields(["-"])
