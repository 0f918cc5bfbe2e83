"""The dispatcher on a real store and real receivers on 127.0.0.1: a slow endpoint holds at
most its own concurrency slots and never stalls another endpoint's deliveries; a refused
destination is dead-lettered without a request."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet

from flowrunner.outbound import AddressPolicy, guarded_client
from flowrunner.secrets import Keyring
from flowrunner.storage import Store
from flowrunner.storage.memory import MemoryStore
from flowrunner.webhooks.dispatcher import Dispatcher, DispatchSettings
from flowrunner.webhooks.retries import RetrySchedule
from flowrunner.webhooks.secretbox import EndpointConfig, seal
from flowrunner.webhooks.signing import new_secret
from tests.conftest import HANG_GUARD
from tests.executions.conftest import eventually
from tests.webhook_receiver import Received, Receiver, receiving

KEYRING = Keyring([Fernet.generate_key().decode()])


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    opened = MemoryStore()
    await opened.connect()
    yield opened
    await opened.close()


async def _endpoint(store: Store, account_id: str, url: str) -> str:
    sealed = seal(KEYRING, EndpointConfig(current=new_secret()))
    made = await store.webhooks.create_endpoint(account_id, url=url, secret=sealed)
    return made.id


def _dispatcher(store: Store, policy: AddressPolicy) -> Dispatcher:
    settings = DispatchSettings(
        schedule=RetrySchedule((60.0,)), per_endpoint=1, max_in_flight=8, poll_seconds=0.05,
        lease=timedelta(seconds=HANG_GUARD),
    )  # fmt: skip
    return Dispatcher(store, KEYRING, policy, settings, worker="test")


async def _until(check: Callable[[], bool], what: str) -> None:
    async def holds() -> bool:
        return check()

    await eventually(holds, what)


async def test_a_slow_endpoint_never_stalls_another(store: Store) -> None:
    account = await store.accounts.create("ada", "hash")
    with receiving() as slow, receiving() as fast:
        slow.gate = threading.Event()
        slow_id = await _endpoint(store, account.id, f"{slow.url}/slow")
        fast_id = await _endpoint(store, account.id, f"{fast.url}/fast")
        for n in range(3):
            await store.webhooks.enqueue(account.id, slow_id, event_type="t", payload={"n": n})
        dispatcher = _dispatcher(store, AddressPolicy.from_settings(False, "127.0.0.1"))
        dispatcher.start()
        try:
            await _until(lambda: len(slow.received) == 1, "the slow endpoint's first request")
            await store.webhooks.enqueue(account.id, fast_id, event_type="t", payload={})
            dispatcher.wake()
            await _until(lambda: len(fast.received) == 1, "the fast endpoint's delivery")
            assert len(slow.received) == 1  # its other two wait for its one slot
            slow.gate.set()
            await _until(lambda: len(slow.received) == 3, "the slow endpoint's rest")
            assert slow.most_in_flight == 1
        finally:
            slow.gate.set()
            await dispatcher.stop()
        page = await store.webhooks.list_deliveries(account.id, status="delivered")
        assert len(page.items) == 4


async def test_a_refused_destination_is_dead_lettered_without_a_request(store: Store) -> None:
    account = await store.accounts.create("ada", "hash")
    with receiving() as receiver:
        endpoint = await _endpoint(store, account.id, f"{receiver.url}/x")
        await store.webhooks.enqueue(account.id, endpoint, event_type="t", payload={})
        dispatcher = _dispatcher(store, AddressPolicy())  # the default: loopback refused
        dispatcher.start()
        try:

            async def dead_lettered() -> bool:
                page = await store.webhooks.list_deliveries(account.id, status="dead")
                return bool(page.items)

            await eventually(dead_lettered, "the refused delivery dead-lettered")
        finally:
            await dispatcher.stop()
        dead = await store.webhooks.list_deliveries(account.id, status="dead")
        assert dead.items[0].attempts == 1
        assert "127.0.0.1" in (dead.items[0].last_error or "")
        assert receiver.received == []


async def test_an_endpoint_failing_past_the_limit_is_disabled_with_a_notice(
    store: Store,
) -> None:
    account = await store.accounts.create("ada", "hash")
    with receiving() as broken, receiving() as watcher:
        broken.answers = [500] * 10
        failing = await _endpoint(store, account.id, f"{broken.url}/down")
        sealed = seal(KEYRING, EndpointConfig(current=new_secret()))
        await store.webhooks.create_endpoint(
            account.id, url=f"{watcher.url}/ops", secret=sealed, events=["webhook.disabled"]
        )
        for n in range(2):
            await store.webhooks.enqueue(account.id, failing, event_type="t", payload={"n": n})
        settings = DispatchSettings(
            schedule=RetrySchedule((0.01,) * 5), per_endpoint=1, poll_seconds=0.05,
            disable_after=timedelta(0),  # failing at all counts as "for days"
        )  # fmt: skip
        policy = AddressPolicy.from_settings(False, "127.0.0.1")
        dispatcher = Dispatcher(store, KEYRING, policy, settings, worker="test")
        dispatcher.start()
        try:
            [notice] = await _arrivals(watcher, 1)
        finally:
            await dispatcher.stop()
        assert notice.json()["type"] == "webhook.disabled"
        assert notice.json()["data"]["endpoint_id"] == failing
        assert not (await store.webhooks.get_endpoint(account.id, failing)).enabled


async def _arrivals(receiver: Receiver, count: int) -> list[Received]:
    await _until(lambda: len(receiver.received) >= count, f"{count} requests")
    return list(receiver.received)


async def test_stop_ends_the_loop_even_when_a_wake_lands_with_it(store: Store) -> None:
    """A send finishing wakes the loop in the same turn as stop() cancels it (the notice test
    hung so): the cancel must not be lost."""
    policy = AddressPolicy.from_settings(False, "127.0.0.1")
    settings = DispatchSettings(schedule=RetrySchedule((60.0,)), poll_seconds=HANG_GUARD)
    dispatcher = Dispatcher(store, KEYRING, policy, settings, worker="test")
    dispatcher.start()
    for _ in range(50):  # until the loop has claimed (nothing) and waits to be woken
        await asyncio.sleep(0)
    for _ in range(20):
        dispatcher.wake()
        await asyncio.sleep(0)  # the wait ends on this turn: the cancel below meets it
        async with asyncio.timeout(HANG_GUARD):
            await dispatcher.stop()
        dispatcher.start()
    await dispatcher.stop()


async def test_the_http_client_is_built_at_the_first_delivery_not_at_start(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A server with no endpoints never pays for the client's TLS trust store.
    built: list[object] = []

    def counting(*args: Any, **kwargs: Any) -> Any:
        built.append(guarded_client(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr("flowrunner.webhooks.dispatcher.guarded_client", counting)
    account = await store.accounts.create("ada", "hash")
    with receiving() as receiver:
        dispatcher = _dispatcher(store, AddressPolicy.from_settings(False, "127.0.0.1"))
        dispatcher.start()
        try:
            await asyncio.sleep(0.2)  # a few polls that find nothing to send
            assert built == []
            endpoint = await _endpoint(store, account.id, f"{receiver.url}/x")
            for n in range(2):
                await store.webhooks.enqueue(account.id, endpoint, event_type="t", payload={"n": n})
            dispatcher.wake()
            await _until(lambda: len(receiver.received) == 2, "both deliveries")
        finally:
            await dispatcher.stop()
    assert len(built) == 1
