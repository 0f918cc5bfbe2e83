"""The sandbox's workers are shared per account: one account's endless scripts cannot keep
another account's evaluation waiting."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Coroutine
from typing import Any

from flowrunner.fairness import ACCOUNT_ID
from flowrunner.scripting import Sandbox


def _as(account: str, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
    """Run ``coro`` as a task working for ``account`` (what the runner sets for a run)."""
    context = contextvars.copy_context()
    context.run(ACCOUNT_ID.set, account)
    return asyncio.get_running_loop().create_task(coro, context=context)


async def test_an_account_holds_at_most_its_share_while_another_evaluates() -> None:
    async with Sandbox(workers=2, timeout=60, per_account=1) as box:
        spinning = [_as("a", box.run_function("while (true) {}", {})) for _ in range(4)]
        await asyncio.sleep(0.2)  # let account a's scripts take what they may
        answer = await _as("b", box.evaluate_expression("input + 1", {"input": 41}))
        assert answer == 42
        assert not any(task.done() for task in spinning)  # b went first: a's still spin
        for task in spinning:
            task.cancel()
        await asyncio.gather(*spinning, return_exceptions=True)
        # Canceled evaluations gave their turns back: both workers serve again.
        both = [_as(k, box.evaluate_expression("1", {})) for k in ("a", "a", "b")]
        assert await asyncio.gather(*both) == [1, 1, 1]


async def test_a_waiting_account_gets_the_next_free_worker_before_a_busier_one() -> None:
    async with Sandbox(workers=1, timeout=60) as box:
        gate = _as("a", box.run_function("while (true) {}", {}))  # holds the one worker
        order: list[str] = []

        async def evaluate(account: str) -> None:
            await box.evaluate_expression("1", {})
            order.append(account)

        queued = [_as("a", evaluate("a")) for _ in range(3)]
        await asyncio.sleep(0)
        queued.append(_as("b", evaluate("b")))  # arrives after a's three
        await asyncio.sleep(0.1)
        assert order == []
        gate.cancel()
        await asyncio.gather(gate, return_exceptions=True)
        await asyncio.gather(*queued)
        assert order == ["b", "a", "a", "a"]
