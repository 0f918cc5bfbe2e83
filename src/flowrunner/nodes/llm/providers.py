"""Provider by name: the one place that knows which class speaks which API.

The SDK modules are imported when a provider is first made, not when the node types are
registered: ``openai`` and ``anthropic`` take about 1.5 s to import, which every CLI command
(and every server start) would otherwise pay before its first line of output.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flowrunner.nodes.llm.types import Provider

if TYPE_CHECKING:
    import httpx2


def make_provider(
    name: str, api_key: str, base_url: str | None, http_client: httpx2.AsyncClient
) -> Provider:
    """A provider client; ``http_client`` must be the guarded one (outbound.sdk_client)."""
    if name == "anthropic":
        from flowrunner.nodes.llm.anthropic_provider import AnthropicProvider

        return AnthropicProvider(api_key, base_url, http_client)
    from flowrunner.nodes.llm.openai_provider import OpenAIProvider

    return OpenAIProvider(api_key, base_url, http_client)
