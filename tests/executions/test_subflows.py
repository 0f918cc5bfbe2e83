"""Child runs of stored sub-flows, at the service: a parent canceled while no process runs it
takes its active children with it (recovery never claims a child, so nobody else would)."""

from __future__ import annotations

from flowrunner.executions.runner import RunControl
from flowrunner.executions.subflows import ChildControl
from tests.executions.conftest import Harness


def test_a_child_is_canceled_or_suspended_with_its_parent_and_canceled_alone() -> None:
    parent = RunControl()
    child = ChildControl(parent)
    assert not child.cancel_requested
    assert not child.suspend_requested
    parent.suspend_requested = True
    assert child.suspend_requested
    parent.cancel_requested = True
    assert child.cancel_requested
    alone = ChildControl(RunControl())
    alone.cancel_requested = True
    assert alone.cancel_requested


async def test_canceling_a_parent_no_process_runs_cancels_its_active_children(
    harness: Harness,
) -> None:
    runs = harness.store.executions
    account = harness.account.id
    parent = await runs.create(account, flow_id="p", flow_version=1)
    await runs.update(account, parent.id, status="running")
    child = await runs.create(account, flow_id="c", flow_version=1, parent_id=parent.id)
    await runs.update(account, child.id, status="running")
    grandchild = await runs.create(account, flow_id="g", flow_version=1, parent_id=child.id)
    done = await runs.create(account, flow_id="c", flow_version=1, parent_id=parent.id)
    await runs.update(account, done.id, status="completed")

    canceled = await harness.service.cancel(account, parent.id)
    assert canceled.status == "canceled"
    assert (await runs.get(account, child.id)).status == "canceled"
    assert (await runs.get(account, grandchild.id)).status == "canceled"
    assert (await runs.get(account, done.id)).status == "completed"  # ended runs stay as they were
    events = await runs.list_events(account, child.id)
    assert events[-1].data == {"status": "canceled", "by_parent": parent.id}
