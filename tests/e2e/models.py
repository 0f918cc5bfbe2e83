"""What the end-to-end tests of the model-calling nodes (``llm``, ``agent``) share: the API
key the scripted model server wants (``models`` in conftest.py), and an account that keeps
it as the secret ``LLM_KEY``, which their flows pass as ``api_key``."""

from __future__ import annotations

import httpx

API_KEY = "sk-e2e-7c1b0a93d5f2"


async def keep_llm_key(client: httpx.AsyncClient) -> None:
    """Stores ``API_KEY`` as the client's account's secret ``LLM_KEY``."""
    response = await client.put("/api/v1/accounts/me/secrets/LLM_KEY", json={"value": API_KEY})
    assert response.status_code in (200, 201), response.text
