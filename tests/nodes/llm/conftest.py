"""The scripted model servers (tests/llm_servers) for the AI node tests, and loopback allowed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.llm_servers.server import ModelServer, model_server

API_KEY = "sk-test-4f1d9c2e7b"


@pytest.fixture
def models() -> Iterator[ModelServer]:
    # One per test: the scripts count calls (rate limits, tool call ids) per server.
    with model_server(api_key=API_KEY) as running:
        yield running


@pytest.fixture(autouse=True)
def allow_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWRUNNER_HTTP_ALLOW_PRIVATE", "true")
    monkeypatch.delenv("FLOWRUNNER_HTTP_ALLOW", raising=False)


def base_url(server: ModelServer, provider: str) -> str:
    return server.openai_url if provider == "openai" else server.anthropic_url
