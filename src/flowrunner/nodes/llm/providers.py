"""Provider by name: the one place that knows which class speaks which API."""

from __future__ import annotations

import httpx2

from flowrunner.nodes.llm.anthropic_provider import AnthropicProvider
from flowrunner.nodes.llm.openai_provider import OpenAIProvider
from flowrunner.nodes.llm.types import Provider


def make_provider(
    name: str, api_key: str, base_url: str | None, http_client: httpx2.AsyncClient
) -> Provider:
    """A provider client; ``http_client`` must be the guarded one (outbound.sdk_client)."""
    if name == "anthropic":
        return AnthropicProvider(api_key, base_url, http_client)
    return OpenAIProvider(api_key, base_url, http_client)
