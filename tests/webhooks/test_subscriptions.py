"""Who receives an event: account endpoints filtered by event, flow and enabled; a flow's
``metadata.webhooks`` entries saved as endpoints once, updated with the flow, and a refused
URL never saved (nor retried on every run)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from cryptography.fernet import Fernet

from flowrunner.outbound import AddressPolicy
from flowrunner.secrets import Keyring
from flowrunner.storage import Account, Store
from flowrunner.storage.memory import MemoryStore
from flowrunner.webhooks.secretbox import EndpointConfig, seal, unseal
from flowrunner.webhooks.subscriptions import Subscriptions

KEYRING = Keyring([Fernet.generate_key().decode()])


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    opened = MemoryStore()
    await opened.connect()
    yield opened
    await opened.close()


@pytest.fixture
async def account(store: Store) -> Account:
    return await store.accounts.create("ada", "hash")


def subscriptions(store: Store) -> Subscriptions:
    return Subscriptions(store, KEYRING, AddressPolicy(), ttl=0)


async def test_endpoints_are_filtered_by_event_flow_and_enabled(
    store: Store, account: Account
) -> None:
    async def make(events: list[str], flows: tuple[str, ...] = (), enabled: bool = True) -> str:
        sealed = seal(KEYRING, EndpointConfig(current="s", flow_ids=flows))
        made = await store.webhooks.create_endpoint(
            account.id, url="https://x.test/h", secret=sealed, events=events, enabled=enabled
        )
        return made.id

    every = await make([])
    failed = await make(["execution.failed"])
    only_f1 = await make([], ("f1",))
    await make([], enabled=False)
    subs = subscriptions(store)
    assert set(await subs.endpoint_ids(account.id, "f1", "execution.failed")) == {
        every, failed, only_f1
    }  # fmt: skip
    assert set(await subs.endpoint_ids(account.id, "f2", "execution.completed")) == {every}


async def test_flow_webhooks_become_endpoints_once_and_follow_the_flow(
    store: Store, account: Account
) -> None:
    subs = subscriptions(store)
    spec = {"url": "https://x.test/a", "secret": "${secrets.HOOK}", "headers": {"X-A": "1"}}
    ids = await subs.endpoint_ids(account.id, "f1", "execution.completed", [spec])
    assert ids == await subs.endpoint_ids(account.id, "f1", "execution.completed", [spec])
    [endpoint] = (await store.webhooks.list_endpoints(account.id)).items
    config = unseal(KEYRING, endpoint.secret)
    assert (config.ref, config.current, config.flow_ids) == ("HOOK", None, ("f1",))
    assert await subs.endpoint_ids(account.id, "f1", "execution.started", [spec]) == []
    assert await subs.endpoint_ids(account.id, "f2", "execution.completed") == []  # f1 only
    moved = {**spec, "url": "https://x.test/b"}
    assert await subs.endpoint_ids(account.id, "f1", "execution.completed", [moved]) == ids
    [endpoint] = (await store.webhooks.list_endpoints(account.id)).items
    assert endpoint.url == "https://x.test/b"


async def test_a_refused_flow_webhook_url_is_never_saved(store: Store, account: Account) -> None:
    subs = subscriptions(store)
    spec = {"url": "http://169.254.169.254/latest"}
    for _ in range(2):
        assert await subs.endpoint_ids(account.id, "f1", "execution.failed", [spec]) == []
    assert (await store.webhooks.list_endpoints(account.id)).items == []
