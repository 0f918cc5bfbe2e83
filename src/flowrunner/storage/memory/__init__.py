"""The in-memory backend: the full storage contract in dicts, for tests and ephemeral runs.

Same semantics as the SQL backends (the conformance suite runs on both); nothing survives the
process.
"""

from __future__ import annotations

from flowrunner.storage.memory.accounts import MemoryAccounts, MemoryTokens
from flowrunner.storage.memory.audit import MemoryAudit
from flowrunner.storage.memory.executions import MemoryExecutions
from flowrunner.storage.memory.flows import MemoryFlows
from flowrunner.storage.memory.kv import MemoryKV
from flowrunner.storage.memory.secrets import MemorySecrets
from flowrunner.storage.memory.state import MemoryState
from flowrunner.storage.memory.webhooks import MemoryWebhooks
from flowrunner.storage.records import Clock, utcnow


class MemoryStore:
    def __init__(self, *, clock: Clock = utcnow) -> None:
        state = MemoryState(clock=clock)
        self.accounts = MemoryAccounts(state)
        self.tokens = MemoryTokens(state)
        self.flows = MemoryFlows(state)
        self.secrets = MemorySecrets(state)
        self.executions = MemoryExecutions(state)
        self.webhooks = MemoryWebhooks(state)
        self.audit = MemoryAudit(state)
        self.kv = MemoryKV(state)

    async def connect(self) -> None:
        """Nothing to open."""

    async def close(self) -> None:
        """Nothing to close; the data lives as long as this object."""


__all__ = ["MemoryStore"]
