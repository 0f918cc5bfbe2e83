"""A webhook's delivery id as the run's idempotency key: a first delivery reads the key once
(``ExecutionService.start`` looks it up; the route does not read it again first), and a
redelivery — same id, new timestamp and signature — answers with the first run."""

from __future__ import annotations

from typing import Any

from flowrunner.audit import AuditLog
from flowrunner.definition.triggers import webhook_spec
from flowrunner.executions.bus import InProcessBus
from flowrunner.executions.service import ExecutionService
from flowrunner.secrets import Keyring, SecretVault
from flowrunner.storage.memory import MemoryStore
from flowrunner.triggers import HookRequest, InboundHooks, TriggerRepository
from flowrunner.triggers.records import config_of
from tests.storage.test_triggers import Submitted

FLOW = "metadata: {name: dedupe}\nnodes:\n  a: {type: set, params: {values: {x: 1}}}\n"


def _request(timestamp: str) -> HookRequest:
    headers = {"content-type": "application/json", "x-delivery": "d-1", "x-ts": timestamp}
    return HookRequest(method="POST", path="/api/v1/hooks/t", query={}, headers=headers,
                       raw=b'{"n": 1}', client="127.0.0.1")  # fmt: skip


async def test_a_first_delivery_reads_its_key_once_and_a_redelivery_gets_the_first_run() -> None:
    store = MemoryStore()
    await store.connect()
    try:
        account = await store.accounts.create("ada", "x")
        flow = await store.flows.create(account.id, name="dedupe")
        await store.flows.add_version(account.id, flow.id, yaml=FLOW)
        repo = TriggerRepository(store)
        spec = webhook_spec(
            "hook", {"verify": {"scheme": "none", "delivery_id_header": "X-Delivery"}}
        )
        trigger = await repo.create(
            account.id, flow_id=flow.id, name="hook", kind="webhook", source="api",
            config=config_of(spec),
        )  # fmt: skip
        # Counted before the services are built: they may keep the bound method.
        reads = [0]
        real = store.executions.get_by_idempotency_key

        async def counted(*args: Any) -> Any:
            reads[0] += 1
            return await real(*args)

        store.executions.get_by_idempotency_key = counted  # type: ignore[method-assign,assignment]
        executor = Submitted()
        runs = ExecutionService(store, executor, InProcessBus())
        vault = SecretVault(store, Keyring([Keyring.generate_key()]), AuditLog(store))
        hooks = InboundHooks(store, repo, runs, vault, AuditLog(store))

        first = await hooks.handle(trigger.id, _request("1"))
        assert first.status == 202
        assert reads[0] == 1
        again = await hooks.handle(trigger.id, _request("2"))  # the input differs: headers
        assert again.status == 202
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.body == first.body
        assert len(executor.runs) == 1
    finally:
        await store.close()
