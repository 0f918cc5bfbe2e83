"""Token usage of a run's model calls, and the account's monthly token budget.

``RunUsage`` is the run's ``USAGE_METER`` (nodes/llm/usage.py): every call's usage is added to
its node's and the run's totals (kept in the checkpoint's resume data, so a resumed run keeps
counting, and reported in the run's final event as ``data.usage``) and to the account's count
for the month (KV namespace ``llm.usage``, key ``YYYY-MM``). With a budget
(``FLOWRUNNER_LLM_MONTHLY_TOKEN_BUDGET``), a call is refused once the month's count reached it.

The monthly count is read-modify-write, not atomic: parallel calls of one account can overshoot
the budget by the calls in flight; a budget is a brake, not an invoice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from flowrunner.errors import NotFound
from flowrunner.nodes.llm.errors import LLMBudgetExceeded
from flowrunner.nodes.llm.types import Usage
from flowrunner.storage import KVStore
from flowrunner.storage.records import utcnow

NAMESPACE = "llm.usage"


class RunUsage:
    def __init__(
        self,
        kv: KVStore,
        account_id: str,
        *,
        budget: int | None = None,
        seed: Mapping[str, Any] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._kv = kv
        self._account_id = account_id
        self._budget = budget
        self._clock = clock
        self._lock = asyncio.Lock()
        self.totals: dict[str, Any] = _empty()
        self.nodes: dict[str, dict[str, Any]] = {}
        if seed:
            self.totals.update({k: int(seed.get(k) or 0) for k in self.totals})
            for node_id, counts in dict(seed.get("nodes") or {}).items():
                self.nodes[str(node_id)] = {k: int(counts.get(k) or 0) for k in _empty()}

    @property
    def used(self) -> bool:
        return bool(self.totals["calls"] > 0)

    def snapshot(self) -> dict[str, Any]:
        """The run's totals and per-node counts (JSON)."""
        return {**self.totals, "nodes": {k: dict(v) for k, v in self.nodes.items()}}

    async def check(self, node_id: str) -> None:
        if self._budget is None:
            return
        spent = await self._month_total()
        if spent >= self._budget:
            raise LLMBudgetExceeded(
                f"node '{node_id}': the account's monthly token budget of {self._budget} is "
                f"spent ({spent} tokens used in {self._month()}); it renews next month "
                "(FLOWRUNNER_LLM_MONTHLY_TOKEN_BUDGET)",
                node_id=node_id,
            )

    async def record(self, node_id: str, usage: Usage) -> None:
        for counts in (self.totals, self.nodes.setdefault(node_id, _empty())):
            counts["calls"] += 1
            counts["prompt_tokens"] += usage.prompt_tokens
            counts["completion_tokens"] += usage.completion_tokens
            counts["total_tokens"] += usage.total_tokens
        async with self._lock:  # one read-modify-write per process at a time
            spent = await self._month_total()
            await self._kv.put(
                self._account_id, NAMESPACE, self._month(), {"tokens": spent + usage.total_tokens}
            )

    async def _month_total(self) -> int:
        try:
            entry = await self._kv.get(self._account_id, NAMESPACE, self._month())
        except NotFound:
            return 0
        value = entry.value
        return int(value.get("tokens") or 0) if isinstance(value, Mapping) else 0

    def _month(self) -> str:
        return self._clock().strftime("%Y-%m")


def _empty() -> dict[str, Any]:
    return {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
