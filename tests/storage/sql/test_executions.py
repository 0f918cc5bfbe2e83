"""SQL-only behaviour of the executions store (the shared contract is in tests/storage)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from flowrunner.errors import Conflict
from flowrunner.storage import Account, Store
from flowrunner.storage.sql import SqlStore


@pytest.mark.parametrize("final", ["completed", "failed", "canceled"])
async def test_a_final_status_lets_the_lease_go_in_the_same_write(
    store: Store, account: Account, final: str
) -> None:
    if not isinstance(store, SqlStore):
        pytest.skip("SQL stores only: the executor releases leases on the others")
    flow = await store.flows.create(account.id, name="f")
    run = await store.executions.create(account.id, flow_id=flow.id, flow_version=1)
    await store.executions.acquire_lease(account.id, run.id, owner="me", ttl=timedelta(seconds=30))
    running = await store.executions.update(account.id, run.id, status="running")
    assert running.lease_owner == "me"  # a status move that does not end it keeps the lease
    done = await store.executions.update(account.id, run.id, status=final)  # type: ignore[arg-type]
    assert done.lease_owner is None
    assert done.lease_expires_at is None
    with pytest.raises(Conflict):  # nothing left to renew
        await store.executions.renew_lease(
            account.id, run.id, owner="me", ttl=timedelta(seconds=30)
        )
