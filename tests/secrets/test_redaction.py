from __future__ import annotations

import pytest

from flowrunner.secrets.redaction import redact_credentials


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            '127.0.0.1:5000 - "WebSocket /api/v1/ws?token=frt_abc-DEF_123" [accepted]',
            '127.0.0.1:5000 - "WebSocket /api/v1/ws?token=***" [accepted]',
        ),
        ("GET /x?a=1&api_key=zz9&b=2 HTTP/1.1", "GET /x?a=1&api_key=***&b=2 HTTP/1.1"),
        ("GET /x?Password=hunter2&PWD=x", "GET /x?Password=***&PWD=***"),
        ("https://h.test/cb?client_secret=s3#top", "https://h.test/cb?client_secret=***#top"),
        ("redis://:pw@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("postgresql://app:p%40ss@db/x", "postgresql://app:***@db/x"),
        ("cloning https://ghp_abc@github.test/x", "cloning https://***@github.test/x"),
    ],
)
def test_credentials_in_urls_are_redacted(line: str, expected: str) -> None:
    assert redact_credentials(line) == expected


@pytest.mark.parametrize(
    "line",
    ["GET /api/v1/flows?limit=10&cursor=abc HTTP/1.1", "mail ops@example.test", "a=b"],
)
def test_lines_without_credentials_are_unchanged(line: str) -> None:
    assert redact_credentials(line) == line
