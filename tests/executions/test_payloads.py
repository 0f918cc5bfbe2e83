"""Masking secrets and bounding payloads before anything of a run is recorded."""

from __future__ import annotations

from flowrunner.errors import NodeFailed
from flowrunner.executions.payloads import TRUNCATED, bounded, error_details
from flowrunner.secrets import Masker


def test_bounded_masks_secrets_anywhere_in_nested_values() -> None:
    masker = Masker(["hunter22", "tok-abc"])
    value = {"a": "x hunter22 y", "b": ["tok-abc", 3, None], "c": {"d": "tok-abcd"}}
    assert bounded(value, masker, 1000) == {
        "a": "x *** y",
        "b": ["***", 3, None],
        "c": {"d": "***d"},
    }


def test_bounded_keeps_small_values_and_marks_large_ones() -> None:
    masker = Masker([])
    assert bounded({"a": [1, 2]}, masker, 100) == {"a": [1, 2]}
    big = bounded({"a": "y" * 500}, masker, 100)
    assert big[TRUNCATED] is True
    assert big["size"] > 500
    assert len(big["preview"]) == 25


def test_bounded_masks_secrets_containing_quotes_exactly() -> None:
    masker = Masker(['pa"ss\\word'])
    assert bounded({"k": 'x pa"ss\\word'}, masker, 1000) == {"k": "x ***"}


def test_error_details_name_the_node_and_the_cause_without_secrets() -> None:
    masker = Masker(["sekrit-1"])
    exc = NodeFailed("fetch", ValueError("bad token sekrit-1"))
    assert error_details(exc, masker) == {
        "code": "node_failed",
        "message": "node 'fetch' failed: bad token ***",
        "type": "ValueError",
        "node_id": "fetch",
    }
