"""The run's token meter (``RunUsage``) and the account's monthly budget on a real store:
calls reserve before and settle after, so racing calls — from two server processes — never
pass the budget together, a call that does not fit in what is left is refused, and a call's
unused reservation comes back."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from flowrunner.errors import NotFound
from flowrunner.executions.llm_usage import NAMESPACE, RunUsage
from flowrunner.nodes.llm.errors import LLMBudgetExceeded
from flowrunner.nodes.llm.types import Usage
from flowrunner.storage import Account, Store
from flowrunner.storage.sql import SqlStore

JUNE = datetime(2026, 6, 15, tzinfo=UTC)


def meter(store: Store, account: Account, budget: int | None) -> RunUsage:
    return RunUsage(store.kv, account.id, budget=budget, clock=lambda: JUNE)


async def test_racing_calls_from_two_processes_never_hold_more_than_the_budget(
    store: Store, store_url: str, account: Account
) -> None:
    other = SqlStore(store_url, migrate=False)  # a second server process's store
    await other.connect()
    try:
        meters = [meter(s, account, 100) for s in (store, other) for _ in range(5)]
        outcomes = await asyncio.gather(
            *(m.reserve("ask", 30) for m in meters), return_exceptions=True
        )
        held = [o for o in outcomes if isinstance(o, int)]
        refused = [o for o in outcomes if isinstance(o, LLMBudgetExceeded)]
        # Holds of 30 bring the count to 30, 60 and 90; a fourth would pass 100.
        assert (len(held), len(refused)) == (3, 7)
        assert await meters[0].month_total() == 90  # never over the budget
        for m, outcome in zip(meters, outcomes, strict=True):
            if isinstance(outcome, int):
                await m.settle("ask", outcome, Usage(7, 3))
        assert await meters[0].month_total() == 30  # what the three calls really used
    finally:
        await other.close()


async def test_a_failed_or_cancelled_call_gives_its_reservation_back(
    store: Store, account: Account
) -> None:
    usage = meter(store, account, 1000)
    held = await usage.reserve("ask", 400)
    assert await usage.month_total() == 400
    await usage.settle("ask", held, None)
    assert await usage.month_total() == 0
    assert usage.snapshot()["calls"] == 0  # nothing was used


async def test_usage_is_counted_per_node_and_run_without_a_budget_too(
    store: Store, account: Account
) -> None:
    usage = meter(store, account, None)
    assert await usage.reserve("ask", 5000) == 0  # no budget: nothing held
    await usage.settle("ask", 0, Usage(10, 5))
    await usage.settle("again", 0, Usage(1, 1))
    snap = usage.snapshot()
    assert (snap["calls"], snap["total_tokens"]) == (2, 17)
    assert snap["nodes"]["ask"] == {
        "calls": 1, "prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
    }  # fmt: skip
    entry = await store.kv.get(account.id, NAMESPACE, "tokens-2026-06")
    assert entry.value == 17
    with pytest.raises(NotFound):  # nothing counted under another month
        await store.kv.get(account.id, NAMESPACE, "tokens-2026-05")


async def test_a_call_that_does_not_fit_or_a_spent_budget_refuses_with_a_clear_message(
    store: Store, account: Account
) -> None:
    usage = meter(store, account, 10)
    held = await usage.reserve("ask", 8)
    await usage.settle("ask", held, Usage(5, 3))  # 8 used, 2 left
    with pytest.raises(LLMBudgetExceeded) as info:
        await usage.reserve("ask", 3)  # could use 3: refused, though the budget is not spent
    message = str(info.value)
    assert "budget of 10 has too little left for this call (8 tokens used or held in 2026-06;" in (
        message
    )
    assert "the call may use up to 3" in message
    assert await usage.month_total() == 8  # the refused call left nothing behind
    await usage.settle("ask", await usage.reserve("ask", 2), Usage(1, 1))  # exactly fits
    assert await usage.month_total() == 10
    with pytest.raises(LLMBudgetExceeded) as info:
        await usage.reserve("ask", 1)
    assert "monthly token budget of 10 is spent (10 tokens used or held in 2026-06" in str(
        info.value
    )
    assert await usage.month_total() == 10
