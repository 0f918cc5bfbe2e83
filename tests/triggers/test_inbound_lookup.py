"""The hook route's trigger lookup: cached for a moment, and read once when many requests
find it expired together (single flight); a change made by this process is never hidden by
a read that started before it."""

from __future__ import annotations

import asyncio

from flowrunner.audit import AuditLog
from flowrunner.definition.triggers import webhook_spec
from flowrunner.executions.bus import InProcessBus
from flowrunner.executions.service import ExecutionService
from flowrunner.secrets import Keyring, SecretVault
from flowrunner.storage.memory import MemoryStore
from flowrunner.triggers import InboundHooks, TriggerRepository
from flowrunner.triggers.records import Trigger, config_of
from tests.storage.test_triggers import Submitted


class CountingRepository(TriggerRepository):
    """The real repository, counting the public route's reads (and holding them at a gate,
    so that requests pile up behind the first one)."""

    finds = 0
    gate: asyncio.Event | None = None

    async def find(self, trigger_id: str) -> Trigger:
        self.finds += 1
        if self.gate is not None:
            await self.gate.wait()
        return await super().find(trigger_id)


async def test_concurrent_lookups_of_an_uncached_trigger_read_the_store_once() -> None:
    store = MemoryStore()
    await store.connect()
    try:
        account = await store.accounts.create("ada", "x")
        repo = CountingRepository(store)
        trigger = await repo.create(
            account.id, flow_id="f", name="hook", kind="webhook", source="api",
            config=config_of(webhook_spec("hook", {})),
        )  # fmt: skip
        vault = SecretVault(store, Keyring([Keyring.generate_key()]), AuditLog(store))
        runs = ExecutionService(store, Submitted(), InProcessBus())
        hooks = InboundHooks(store, repo, runs, vault, AuditLog(store))

        repo.gate = asyncio.Event()
        waiting = [asyncio.ensure_future(hooks._lookup(trigger.id)) for _ in range(20)]
        await asyncio.sleep(0)
        repo.gate.set()
        found = await asyncio.gather(*waiting)
        assert {t.id for t, _ in found} == {trigger.id}
        assert repo.finds == 1
        await hooks._lookup(trigger.id)
        assert repo.finds == 1  # cached now

        # A change by this process: the next request reads again, and a read that began
        # before the change is not cached.
        repo.gate = asyncio.Event()
        hooks.forget(trigger.id)
        early = asyncio.ensure_future(hooks._lookup(trigger.id))
        await asyncio.sleep(0)
        hooks.forget(trigger.id)
        repo.gate.set()
        await early
        await hooks._lookup(trigger.id)
        assert repo.finds == 3
    finally:
        await store.close()


async def test_a_changed_verification_secret_is_read_again_at_once() -> None:
    store = MemoryStore()
    await store.connect()
    try:
        account = await store.accounts.create("ada", "x")
        repo = CountingRepository(store)
        verify = {"verify": {"scheme": "token", "secret": "KEY"}}
        trigger = await repo.create(
            account.id, flow_id="f", name="hook", kind="webhook", source="api",
            config=config_of(webhook_spec("hook", verify)),
        )  # fmt: skip
        other = await repo.create(
            account.id, flow_id="f", name="plain", kind="webhook", source="api",
            config=config_of(webhook_spec("plain", {})),
        )  # fmt: skip
        vault = SecretVault(store, Keyring([Keyring.generate_key()]), AuditLog(store))
        runs = ExecutionService(store, Submitted(), InProcessBus())
        hooks = InboundHooks(store, repo, runs, vault, AuditLog(store))
        vault.on_change(hooks.forget_key)  # as the composition root wires it

        await vault.put(account, "KEY", "first-value-1")
        assert (await hooks._lookup(trigger.id))[1] == "first-value-1"
        await hooks._lookup(other.id)
        await vault.put(account, "KEY", "second-value-2")
        assert (await hooks._lookup(trigger.id))[1] == "second-value-2"
        await vault.delete(account, "KEY")
        assert (await hooks._lookup(trigger.id))[1] is None
        await vault.put(account, "UNRELATED", "some-value-3")
        await hooks._lookup(other.id)
        assert repo.finds == 4  # trigger: 3 reads; the other, not using KEY: read once
    finally:
        await store.close()
