"""Masking secrets and bounding payloads before anything of a run is recorded."""

from __future__ import annotations

from flowrunner.errors import NodeFailed
from flowrunner.executions.payloads import MAX_DEPTH, TRUNCATED, bounded, error_details
from flowrunner.nodes.agent.errors import AgentStepsExhausted
from flowrunner.nodes.llm.errors import LLMRateLimited
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


def nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


def test_bounded_marks_values_too_deep_to_serve_again() -> None:
    masker = Masker([])
    assert bounded({"v": nested(MAX_DEPTH - 1)}, masker, 100_000) == {"v": nested(MAX_DEPTH - 1)}
    deep = bounded({"v": nested(900)}, masker, 100_000)
    assert deep[TRUNCATED] is True
    assert deep["reason"] == f"nested deeper than {MAX_DEPTH} levels"
    # With secrets to mask, the recursive masking gives up first: the same marker, no preview.
    masked = bounded({"v": nested(900), "k": "hunter22"}, Masker(["hunter22"]), 100_000)
    assert masked == {TRUNCATED: True, "reason": f"nested deeper than {MAX_DEPTH} levels"}


def test_bounded_text_keeps_nul_and_replaces_lone_surrogates() -> None:
    # NUL is a character every backend stores (JSON columns); a lone surrogate is not text.
    value = {"a": "x\x00y", "b": "p\ud800q", "k\x00": "\\u0000 stays text"}
    assert bounded(value, Masker([]), 1000) == {
        "a": "x\x00y",
        "b": "p\ufffdq",
        "k\x00": "\\u0000 stays text",
    }


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


def test_error_details_show_only_the_context_an_error_makes_public_masked() -> None:
    masker = Masker(["sekrit-1"])
    conversation = [{"role": "user", "content": "use sekrit-1"}]
    cause = AgentStepsExhausted("too many", node_id="think", steps=2, conversation=conversation)
    details = error_details(NodeFailed("think", cause), masker)
    assert details["code"] == "agent_max_steps"
    assert details["details"] == {
        "steps": 2,
        "conversation": [{"role": "user", "content": "use ***"}],
    }
    # Other errors' context (which may hold anything) stays out of the stored error.
    private = LLMRateLimited("slow down", retry_after=3.0, status=429)
    assert "details" not in error_details(NodeFailed("ask", private), masker)
