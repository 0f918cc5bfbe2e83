"""What a delivery costs the store: one claim and one attempt record on a healthy endpoint,
with deliveries left unclaimed for want of a slot still sent as slots free (no poll needed)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet

from flowrunner.errors import NotFound
from flowrunner.outbound import AddressPolicy
from flowrunner.secrets import Keyring
from flowrunner.storage import Store
from flowrunner.storage.memory import MemoryStore
from flowrunner.webhooks.dispatcher import HEALTH, Dispatcher, DispatchSettings
from flowrunner.webhooks.retries import RetrySchedule
from flowrunner.webhooks.secretbox import EndpointConfig, seal
from flowrunner.webhooks.signing import new_secret
from tests.conftest import HANG_GUARD
from tests.executions.conftest import eventually
from tests.webhook_receiver import receiving

KEYRING = Keyring([Fernet.generate_key().decode()])
LOOPBACK = AddressPolicy.from_settings(False, "127.0.0.1")


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    opened = MemoryStore()
    await opened.connect()
    yield opened
    await opened.close()


def _dispatcher(store: Store, *, max_in_flight: int = 8) -> Dispatcher:
    # A poll far away: whatever goes out here went out because something woke the loop.
    settings = DispatchSettings(
        schedule=RetrySchedule((60.0,)), max_in_flight=max_in_flight, poll_seconds=HANG_GUARD,
        lease=timedelta(seconds=HANG_GUARD),
    )  # fmt: skip
    return Dispatcher(store, KEYRING, LOOPBACK, settings, worker="test")


async def _endpoint(store: Store, account_id: str, url: str) -> str:
    sealed = seal(KEYRING, EndpointConfig(current=new_secret()))
    return (await store.webhooks.create_endpoint(account_id, url=url, secret=sealed)).id


def _count(store: Store, owner: Any, name: str) -> list[int]:
    calls = [0]
    real = getattr(owner, name)

    async def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return await real(*args, **kwargs)

    setattr(owner, name, counted)
    return calls


async def _delivered(store: Store, account_id: str, count: int) -> None:
    async def done() -> bool:
        page = await store.webhooks.list_deliveries(account_id, status="delivered")
        return len(page.items) == count

    await eventually(done, f"{count} deliveries recorded")


async def test_a_delivery_to_a_healthy_endpoint_costs_one_claim_and_no_health_write(
    store: Store,
) -> None:
    account = await store.accounts.create("ada", "hash")
    with receiving() as receiver:
        endpoint = await _endpoint(store, account.id, f"{receiver.url}/x")
        dispatcher = _dispatcher(store)
        claims = _count(store, store.webhooks, "admin_claim_due")
        deletes = _count(store, store.kv, "delete")
        dispatcher.start()
        try:
            await eventually(_is(claims, 1), "the first (empty) claim")
            await store.webhooks.enqueue(account.id, endpoint, event_type="t", payload={})
            dispatcher.wake()
            await _delivered(store, account.id, 1)
            for _ in range(20):  # a claim the finished send would start runs within these
                await asyncio.sleep(0)
        finally:
            await dispatcher.stop()
    assert len(receiver.received) == 1
    assert claims[0] == 2  # the start's, the wake's: none after the send
    assert deletes[0] == 0  # the endpoint had no failure marker to clear


def _is(calls: list[int], count: int) -> Any:
    async def check() -> bool:
        return calls[0] >= count

    return check


async def test_a_success_clears_the_endpoint_failure_marker(store: Store) -> None:
    account = await store.accounts.create("ada", "hash")
    with receiving() as receiver:
        endpoint = await _endpoint(store, account.id, f"{receiver.url}/x")
        since = datetime(2026, 1, 1, tzinfo=UTC).isoformat()
        await store.kv.put(account.id, HEALTH, endpoint, since)
        await store.webhooks.enqueue(account.id, endpoint, event_type="t", payload={})
        dispatcher = _dispatcher(store)
        dispatcher.start()
        try:
            await _delivered(store, account.id, 1)

            async def cleared() -> bool:
                try:
                    await store.kv.get(account.id, HEALTH, endpoint)
                except NotFound:
                    return True
                return False

            await eventually(cleared, "the failure marker deleted")
        finally:
            await dispatcher.stop()


async def test_deliveries_left_for_want_of_a_slot_go_out_as_slots_free(store: Store) -> None:
    account = await store.accounts.create("ada", "hash")
    with receiving() as receiver:
        endpoint = await _endpoint(store, account.id, f"{receiver.url}/x")
        for n in range(3):
            await store.webhooks.enqueue(account.id, endpoint, event_type="t", payload={"n": n})
        dispatcher = _dispatcher(store, max_in_flight=1)
        dispatcher.start()  # claims one; the other two wait for its slot, not for the poll
        try:
            await _delivered(store, account.id, 3)
        finally:
            await dispatcher.stop()
    assert sorted(r.json()["n"] for r in receiver.received) == [0, 1, 2]
