"""Status transitions: the legal moves, and the compare-and-set against racing writers."""

from __future__ import annotations

import pytest

from flowrunner.errors import Conflict
from flowrunner.executions.states import check_transition, transition
from flowrunner.storage import Account, Store


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("queued", "running"),
        ("queued", "canceled"),
        ("queued", "failed"),
        ("running", "completed"),
        ("running", "failed"),
        ("running", "canceled"),
    ],
)
def test_legal_moves_pass(current: str, target: str) -> None:
    check_transition(current, target, execution_id="x")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("queued", "completed"),
        ("running", "queued"),
        ("completed", "running"),
        ("failed", "completed"),
        ("canceled", "running"),
        ("completed", "canceled"),
    ],
)
def test_illegal_moves_conflict(current: str, target: str) -> None:
    with pytest.raises(Conflict):
        check_transition(current, target, execution_id="x")  # type: ignore[arg-type]


async def test_a_transition_loses_to_a_concurrent_change(store: Store, account: Account) -> None:
    run = await store.executions.create(account.id, flow_id="f", flow_version=1)
    running = await transition(store.executions, run, "running")
    assert running.started_at is not None
    await transition(store.executions, running, "canceled")
    # `running` is a stale copy: the store says canceled, so completing it must fail.
    with pytest.raises(Conflict):
        await transition(store.executions, running, "completed")
    assert (await store.executions.get(account.id, run.id)).status == "canceled"
