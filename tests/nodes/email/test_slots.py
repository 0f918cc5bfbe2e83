"""Mail connections are bounded per process and shared fairly between accounts."""

from __future__ import annotations

import asyncio

import pytest

from flowrunner.fairness import ACCOUNT_ID
from flowrunner.nodes.email import slots
from tests.conftest import HANG_GUARD


async def test_one_account_gets_at_most_half_the_connections_and_others_still_get_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(slots, "MAX_CONNECTIONS", 4)  # per account: 2
    inside: list[str] = []
    three_in = asyncio.Event()
    release = asyncio.Event()

    async def connect(account: str) -> None:
        ACCOUNT_ID.set(account)
        async with slots.connection_slot():
            inside.append(account)
            if len(inside) == 3:
                three_in.set()
            await release.wait()

    busy = [asyncio.create_task(connect("a")) for _ in range(5)]
    other = asyncio.create_task(connect("b"))
    async with asyncio.timeout(HANG_GUARD):
        await three_in.wait()
    # Account a holds its half and waits for the rest; b got in although a queued first.
    assert sorted(inside) == ["a", "a", "b"]
    semaphore = slots._SLOTS[asyncio.get_running_loop()]
    assert (semaphore.held("a"), semaphore.waiting("a"), semaphore.held("b")) == (2, 3, 1)
    release.set()
    await asyncio.gather(*busy, other)
    assert inside.count("a") == 5
    assert semaphore.in_use == 0
