"""``transport_error`` and ``answer_error``: what both providers raise for a call that failed
below HTTP (from the SDKs' own exceptions chained as the SDKs chain them) or with an error
answer (from either wire format's error body)."""

from __future__ import annotations

from collections.abc import Callable

import anthropic
import httpx2
import openai
import pytest

from flowrunner.errors import DestinationRefused
from flowrunner.nodes.llm.errors import (
    LLMContextTooLong,
    LLMError,
    LLMRateLimited,
    LLMTimeout,
    LLMUnreachable,
    answer_error,
    transport_error,
)
from flowrunner.outbound.httpx2_client import ResponseTooLarge

REQUEST = httpx2.Request("POST", "http://127.0.0.1:9/v1/chat/completions")


def chained(outer: BaseException, cause: BaseException) -> BaseException:
    """``outer`` raised ``from cause``, as the SDKs raise theirs."""
    try:
        try:
            raise cause
        except BaseException as inner:
            raise outer from inner
    except BaseException as caught:
        return caught


@pytest.mark.parametrize(
    ("connection", "timeout"),
    [
        (openai.APIConnectionError, openai.APITimeoutError),
        (anthropic.APIConnectionError, anthropic.APITimeoutError),
    ],
)
def test_each_sdks_failures_map_to_the_same_errors(
    connection: Callable[..., Exception], timeout: Callable[..., Exception]
) -> None:
    timed_out = chained(timeout(request=REQUEST), httpx2.ReadTimeout("slow", request=REQUEST))
    error = transport_error("p", timed_out, timeout=7)
    assert type(error) is LLMTimeout
    assert error.message == "p: no answer within 7 s"

    refused = DestinationRefused("127.0.0.1 is private", host="127.0.0.1")
    error = transport_error("p", chained(connection(request=REQUEST), refused))
    assert error is refused  # the guard's own error, whatever wrapped it

    too_large = ResponseTooLarge("over 32 MiB")
    error = transport_error("p", chained(connection(request=REQUEST), too_large))
    assert type(error) is LLMError
    assert "larger than the limit" in error.message

    down = httpx2.ConnectError("connection refused", request=REQUEST)
    error = transport_error("p", chained(connection(request=REQUEST), down))
    assert type(error) is LLMUnreachable
    assert error.message == "p: cannot reach the endpoint: connection refused"


def test_a_stream_cut_off_mid_reply_is_unreachable_and_says_so() -> None:
    error = transport_error("p", httpx2.RemoteProtocolError("peer closed", request=REQUEST))
    assert type(error) is LLMUnreachable
    assert error.message == "p: the reply was cut off: peer closed"
    assert type(transport_error("p", ResponseTooLarge("over"))) is LLMError


@pytest.mark.parametrize(
    "body",
    [
        {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit"}},
        {"type": "error", "error": {"type": "rate_limit_error", "message": "Rate limit reached"}},
        {"message": "Rate limit reached"},  # a compatible server's bare body
    ],
    ids=["openai", "anthropic", "bare"],
)
def test_each_wire_formats_error_answer_maps_the_same_way(body: object) -> None:
    error = answer_error("p", 429, body, "fallback", {"retry-after": "2"})
    assert type(error) is LLMRateLimited
    assert error.message == "p answered 429: Rate limit reached"
    assert error.retry_after == 2.0
    too_long = {"error": {"message": "prompt is too long: 300000 tokens"}}
    assert type(answer_error("p", 400, too_long, "x", {})) is LLMContextTooLong
    assert answer_error("p", 500, None, "Internal Server Error", {}).message == (
        "p answered 500: Internal Server Error"
    )
