"""Context (per-run state) and ErrorInfo."""

from __future__ import annotations

import pytest

from flowrunner.engine import Context, ErrorInfo, NodeEvent


def test_a_child_context_shares_state_and_observer_but_not_results() -> None:
    events: list[NodeEvent] = []
    parent = Context(shared={"k": 1}, input="in", execution={"id": "ex"}, observer=events.append)
    parent.results["a"] = 1
    child = parent.child("sub")
    assert child.shared is parent.shared
    assert (child.input, child.results, child.flow_path, child.steps) == ("in", {}, ("sub",), 0)
    assert child.execution == {"id": "ex"}
    child.log("hello")
    assert [(e.kind, e.message, e.flow_path) for e in events] == [("log", "hello", ("sub",))]


def test_execution_metadata_is_a_read_only_copy() -> None:
    execution = {"id": "ex"}
    ctx = Context(execution=execution)
    execution["id"] = "changed"
    assert ctx.execution["id"] == "ex"
    with pytest.raises(TypeError):
        ctx.execution["id"] = "forged"  # type: ignore[index]


def test_a_fresh_context_has_empty_state() -> None:
    ctx = Context()
    assert (ctx.shared, ctx.results, ctx.input, ctx.error, ctx.steps) == ({}, {}, None, None, 0)
    assert dict(ctx.execution) == {}


def test_error_info_describes_an_exception_and_the_failed_input() -> None:
    info = ErrorInfo.from_exception("fetch", ConnectionError("refused"), {"url": "u"})
    assert info.as_dict() == {
        "node_id": "fetch",
        "type": "ConnectionError",
        "message": "refused",
        "data": {"url": "u"},
    }
