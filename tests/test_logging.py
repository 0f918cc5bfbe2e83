"""Service logging: JSON lines with run context and correlation id, secrets masked."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from flowrunner.logging import configure_logging, masking
from flowrunner.secrets import Masker


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    stream = io.StringIO()
    configure_logging("debug", json=True, stream=stream)
    yield stream
    structlog.reset_defaults()
    root.handlers[:], root.level = saved
    structlog.contextvars.clear_contextvars()


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_run_context_and_correlation_id_are_on_every_line(captured: io.StringIO) -> None:
    with structlog.contextvars.bound_contextvars(
        request_id="req-1", execution_id="e1", flow_id="f1", account_id="a1", node_id="n1"
    ):
        structlog.get_logger("flowrunner.test").info("node done", attempt=2)
        logging.getLogger("flowrunner.stdlib").warning("from the standard library")
    first, second = _lines(captured)
    for line in (first, second):
        assert line["request_id"] == "req-1"
        assert line["execution_id"] == "e1"
        assert line["node_id"] == "n1"
        assert "timestamp" in line
    assert first["event"] == "node done"
    assert first["attempt"] == 2
    assert first["level"] == "info"
    assert second["event"] == "from the standard library"
    assert second["level"] == "warning"


def test_secret_values_are_masked_in_log_lines(captured: io.StringIO) -> None:
    with masking(Masker(["p4ssw0rd"]).mask):
        structlog.get_logger().info("calling with p4ssw0rd", header={"auth": "Bearer p4ssw0rd"})
        logging.getLogger("x").error("failed: p4ssw0rd")
    assert "p4ssw0rd" not in captured.getvalue()
    first = _lines(captured)[0]
    assert first["event"] == "calling with ***"
    assert first["header"] == {"auth": "Bearer ***"}


def test_levels_below_the_configured_one_are_dropped() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure_logging("warning", json=True, stream=stream)
        structlog.get_logger("quiet").info("hidden")
        structlog.get_logger("quiet").warning("shown")
    finally:
        structlog.reset_defaults()
        root.handlers[:], root.level = saved
    assert [line["event"] for line in _lines(stream)] == ["shown"]


def test_credentials_in_logged_urls_are_redacted_whoever_logs_them(
    captured: io.StringIO,
) -> None:
    # uvicorn's access log formats the path with its query string into the message.
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:1", "GET", "/api/v1/ws?token=frt_leak", "1.1", 101
    )
    structlog.get_logger().info("calling", url="https://user:pw-leak@h.test/?api_key=k-leak")
    text = captured.getvalue()
    assert "leak" not in text
    first, second = _lines(captured)
    assert first["event"] == '127.0.0.1:1 - "GET /api/v1/ws?token=*** HTTP/1.1" 101'
    assert second["url"] == "https://user:***@h.test/?api_key=***"


def test_a_secret_in_a_logged_traceback_is_masked(captured: io.StringIO) -> None:
    with masking(Masker(["p4ssw0rd"]).mask):
        try:
            raise ValueError("rejected p4ssw0rd")
        except ValueError:
            structlog.get_logger().exception("call failed")
    assert "p4ssw0rd" not in captured.getvalue()
    assert "rejected ***" in captured.getvalue()
