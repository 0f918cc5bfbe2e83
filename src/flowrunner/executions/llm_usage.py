"""Token usage of a run's model calls, and the account's monthly token budget.

``RunUsage`` is the run's ``USAGE_METER`` (nodes/llm/usage.py): every call's usage is added to
its node's and the run's totals (kept in the checkpoint's resume data, so a resumed run keeps
counting, and stored with the execution as its ``usage``) and to the account's count for the
month (KV namespace ``llm.usage``, key ``tokens-YYYY-MM``, a number).

The count is the store's atomic ``increment``, so it holds across server processes and
workers. With a budget (``FLOWRUNNER_LLM_MONTHLY_TOKEN_BUDGET``) a call first adds the most
tokens it can use (nodes/llm/usage.py ``estimate``: an upper bound of its prompt plus its
``max_tokens``) to the count and goes ahead only if the count is then still within the
budget; when it ends, its real usage replaces the hold. Calls racing for the last of a budget
are ordered by the increments: each sees the holds of those before it, so together they
never pass the budget, and a month cannot end over it.
"""

from __future__ import annotations

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

    async def reserve(self, node_id: str, tokens: int) -> int:
        if self._budget is None:
            return 0  # nothing to hold: the count is only added to after the call
        month = self._month()
        held = max(tokens, 1)
        after = await self._add(month, held)
        if after > self._budget:
            await self._add(month, -held)
            before = after - held
            spent = "is spent" if before >= self._budget else "has too little left for this call"
            raise LLMBudgetExceeded(
                f"node '{node_id}': the account's monthly token budget of {self._budget} "
                f"{spent} ({before} tokens used or held in {month}; the call may use up to "
                f"{held}: its prompt and max_tokens); it renews next month "
                "(FLOWRUNNER_LLM_MONTHLY_TOKEN_BUDGET)",
                node_id=node_id,
            )
        return held

    async def settle(self, node_id: str, held: int, usage: Usage | None) -> None:
        used = usage.total_tokens if usage is not None else 0
        if usage is not None:
            for counts in (self.totals, self.nodes.setdefault(node_id, _empty())):
                counts["calls"] += 1
                counts["prompt_tokens"] += usage.prompt_tokens
                counts["completion_tokens"] += usage.completion_tokens
                counts["total_tokens"] += usage.total_tokens
        if used != held:
            await self._add(self._month(), used - held)

    async def month_total(self) -> int:
        """The account's tokens this month (what calls used plus what calls in flight hold)."""
        try:
            entry = await self._kv.get(self._account_id, NAMESPACE, _key(self._month()))
        except NotFound:
            return 0
        return int(entry.value) if isinstance(entry.value, int | float) else 0

    async def _add(self, month: str, amount: int) -> int:
        entry = await self._kv.increment(self._account_id, NAMESPACE, _key(month), amount)
        return int(entry.value) if isinstance(entry.value, int | float) else 0

    def _month(self) -> str:
        return self._clock().strftime("%Y-%m")


def _key(month: str) -> str:
    return f"tokens-{month}"


def _empty() -> dict[str, Any]:
    return {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
