"""An agent's conversation memory across runs: ``memory_key`` keeps it in the account's
key-value store (namespace ``agent.memory``), trimmed to ``memory_tokens``.

A visit starts from the kept conversation (its own system messages first, then the memory,
then its new messages) and, when it ends with an answer, keeps the conversation again: the
system messages left out (they come from the params each time), the oldest turns dropped
until the estimate fits — whole turns only, so the kept part starts at a user message and
never with a tool result cut from the call that asked for it. Secret values of the run are
masked (``***``) before anything is stored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from flowrunner.errors import NotFound
from flowrunner.nodes.llm.types import JSONDict
from flowrunner.nodes.llm.usage import CHARS_PER_TOKEN
from flowrunner.nodes.store import AccountKV
from flowrunner.secrets.masking import Masker

__all__ = ["NAMESPACE", "recall", "remember", "trimmed"]

NAMESPACE = "agent.memory"
_SYSTEM = ("system", "developer")


async def recall(kv: AccountKV, key: str) -> list[JSONDict]:
    """The conversation kept under ``key`` ([] when there is none)."""
    try:
        entry = await kv.get(NAMESPACE, key)
    except NotFound:
        return []
    value = entry.value
    if not isinstance(value, list):
        return []
    return [dict(m) for m in value if isinstance(m, Mapping) and isinstance(m.get("role"), str)]


async def remember(
    kv: AccountKV,
    key: str,
    conversation: Sequence[Mapping[str, Any]],
    tokens: int,
    secrets: Mapping[str, Any],
) -> None:
    kept = trimmed([m for m in conversation if m.get("role") not in _SYSTEM], tokens)
    await kv.put(NAMESPACE, key, Masker.for_secrets(secrets).mask(kept))


def trimmed(messages: Sequence[Mapping[str, Any]], tokens: int) -> list[JSONDict]:
    """The newest whole turns of ``messages`` whose estimated size fits ``tokens``."""
    starts = [i for i, m in enumerate(messages) if m.get("role") == "user"]
    for start in starts:
        kept = [dict(m) for m in messages[start:]]
        if _estimate(kept) <= tokens:
            return kept
    return []  # not even the last turn fits: nothing is kept


def _estimate(messages: Sequence[Mapping[str, Any]]) -> int:
    return -(-len(json.dumps(messages, default=str)) // CHARS_PER_TOKEN)
