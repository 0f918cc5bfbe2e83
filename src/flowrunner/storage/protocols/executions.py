"""Runs: executions, their events, checkpoints and leases.

The rules every backend follows are in ``flowrunner.storage.protocols``.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from flowrunner.storage.protocols.limits import DEFAULT_LIMIT, MAX_LIMIT
from flowrunner.storage.records import (
    Checkpoint,
    Execution,
    ExecutionEvent,
    ExecutionStatus,
    JSONValue,
    NewCheckpoint,
    NewDelivery,
    NewEvent,
    Page,
)


class ExecutionStore(Protocol):
    async def create(
        self,
        account_id: str,
        *,
        flow_id: str,
        flow_version: int | None,
        input: JSONValue = None,
        idempotency_key: str | None = None,
        status: ExecutionStatus = "queued",
        parent_id: str | None = None,
        lease_owner: str | None = None,
        lease_ttl: timedelta | None = None,
    ) -> Execution:
        """A new execution; ``Conflict`` if ``idempotency_key`` is already used in the account
        (fetch the original with ``get_by_idempotency_key``). ``parent_id`` makes it a child
        run (a sub-flow) of that execution. With ``lease_owner`` (and ``lease_ttl``) it is
        created leased, as ``acquire_lease`` right after would leave it, in the same write.

        ``flow_version=None`` pins the flow's current version, read in the same write (one
        round trip fewer than reading the flow first, where the backend can); ``NotFound``
        if the account has no such flow, it is deleted, or it has no version yet."""
        ...

    async def get(self, account_id: str, execution_id: str) -> Execution: ...

    async def get_by_idempotency_key(self, account_id: str, key: str) -> Execution: ...

    async def list(
        self,
        account_id: str,
        *,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
        status: Collection[ExecutionStatus] = (),
        flow_id: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        parent_id: str | None = None,
    ) -> Page[Execution]:
        """Newest first; ``parent_id`` keeps the child runs of that execution only."""
        ...

    async def update(
        self,
        account_id: str,
        execution_id: str,
        *,
        expected_status: Collection[ExecutionStatus] = (),
        status: ExecutionStatus | None = None,
        output: JSONValue = None,
        error: Mapping[str, JSONValue] | None = None,
        progress: float | None = None,
        current_node: str | None = None,
        started_at: datetime | None = None,
        finished_at: datetime | None = None,
        release_lease: bool = False,
        drop_checkpoint: bool = False,
        outbox: Sequence[NewDelivery] = (),
        usage: Mapping[str, JSONValue] | None = None,
        wake_at: datetime | None = None,
        wait: Mapping[str, JSONValue] | None = None,
        expected_seq: int | None = None,
        events: Sequence[NewEvent] = (),
    ) -> Execution:
        """Set the given fields (None = leave as is).

        ``wake_at`` and ``wait`` are a waiting run's (see ``Execution``); a ``status`` other
        than ``waiting`` clears ``wake_at`` in the same write. With ``expected_seq``,
        ``Conflict`` unless ``last_event_seq`` is still that: a version check for a caller
        that read the run and decided on what it saw (a signal delivered to a wait).

        ``outbox`` entries (webhook events the change causes) are added to the webhook outbox,
        pending and due now, in the same atomic write: both or neither. An entry whose
        endpoint no longer exists is dropped, never a reason to refuse the change.

        ``events`` are appended in the same atomic write too, numbered as by
        ``append_events``: consecutive, the last one the returned record's
        ``last_event_seq`` (``records.appended`` rebuilds them as stored). A run's last
        events go with its final status this way: nobody sees the final event before the
        final status, and a crash cannot store the status without the events. (PostgreSQL's
        ``EndNotices`` fire when events go with a final status, on commit.)

        With ``expected_status``, ``Conflict`` unless the current status is one of them: a
        compare-and-set that lets the state machine reject racing transitions.
        ``release_lease`` frees the lease and clears ``current_node`` in the same write (the
        run is no longer run anywhere); ``drop_checkpoint`` deletes the run's checkpoint with
        it. The store does neither on its own: ``executions.states`` says when (a final
        status).
        """
        ...

    async def delete(
        self,
        account_id: str,
        execution_ids: Sequence[str],
        *,
        statuses: Collection[ExecutionStatus],
    ) -> builtins.list[str]:
        """Delete those of ``execution_ids`` that belong to this account and whose status is
        one of ``statuses`` at the time of the delete, with their events, checkpoint and
        position, each one whole or not at all; returns the ids deleted. Any other id
        (missing, another account's, in another status) is left as it is.

        A run's webhook deliveries (``WebhookDelivery.execution_id``) go with it, with their
        attempts' detail (``ATTEMPTS_NAMESPACE`` in the KV store): in the same write where the
        backend has one (SQL, memory), right after the run otherwise (DynamoDB). A delivery
        still pending (due or in flight) must still be sent, so a run with one is left as it
        is, like a run in another status: a later pass deletes it once its deliveries are
        finished (delivered or dead).

        Retention's one write: ``statuses`` is how it never deletes a run that is active
        (or was made active again, by a resume, since it was chosen).
        """
        ...

    # events: append-only, numbered by the store ----------------------------------------

    async def append_events(
        self, account_id: str, execution_id: str, events: Sequence[NewEvent]
    ) -> builtins.list[ExecutionEvent]:
        """Append atomically; numbers continue the execution's sequence with no gap even
        when several writers append at once."""
        ...

    async def list_events(
        self,
        account_id: str,
        execution_id: str,
        *,
        after_seq: int = 0,
        limit: int = MAX_LIMIT,
    ) -> builtins.list[ExecutionEvent]:
        """Events with ``seq > after_seq`` in ascending order (tail with the last seq seen)."""
        ...

    # checkpoints: one per execution, while it can still be resumed ----------------------

    async def save_checkpoint(
        self,
        account_id: str,
        execution_id: str,
        *,
        shared: JSONValue,
        next_node: str | None,
        results: Mapping[str, JSONValue],
        resume: Mapping[str, JSONValue] | None = None,
    ) -> Checkpoint:
        """Save (replace) the run's checkpoint; ``resume`` None is stored as ``{}``."""
        ...

    async def get_checkpoint(self, account_id: str, execution_id: str) -> Checkpoint | None:
        """The latest checkpoint, or None if the run never saved one."""
        ...

    async def record_step(
        self,
        account_id: str,
        execution_id: str,
        events: Sequence[NewEvent],
        *,
        checkpoint: NewCheckpoint | None = None,
        progress: float | None = None,
        current_node: str | None = None,
        outbox: Sequence[NewDelivery] = (),
    ) -> builtins.list[ExecutionEvent]:
        """One step of a run in one durable write: append ``events`` (numbered as by
        ``append_events``) and, if given, save ``checkpoint`` and add ``outbox`` entries (the
        webhook events of the step's node events, as for ``update``); all or nothing. This is
        the runner's hot path (once per node), so backends make it their cheapest write.

        ``progress`` and ``current_node`` (None = leave as is) are set on the execution with
        the step, as its ``last_event_seq`` is: where the run is, for readers of the record.

        Saving a checkpoint is progress: it resets the execution's ``resume_attempts`` to 0."""
        ...

    # leases: who is running it -----------------------------------------------------------

    async def acquire_lease(
        self, account_id: str, execution_id: str, *, owner: str, ttl: timedelta
    ) -> Execution:
        """Take the lease if it is free, expired or already ``owner``'s; else ``Conflict``."""
        ...

    async def renew_lease(
        self, account_id: str, execution_id: str, *, owner: str, ttl: timedelta
    ) -> Execution:
        """Extend ``owner``'s lease; ``Conflict`` if someone else holds it or it is free."""
        ...

    async def release_lease(self, account_id: str, execution_id: str, *, owner: str) -> None:
        """Free the lease if ``owner`` holds it; releasing a lease one no longer holds is a
        no-op (it was stolen after expiry, the new owner keeps it)."""
        ...

    async def admin_claim_expired_leases(
        self,
        *,
        owner: str,
        ttl: timedelta,
        limit: int = 100,
        unleased_after: timedelta | None = None,
    ) -> builtins.list[Execution]:
        """Crash recovery: take over active (queued/running) executions, of any account,
        whose lease has expired, and those that never had a lease (or were released while
        active) and were created more than ``unleased_after`` ago (default: ``ttl``) — their
        creator died before handing them to an executor. Concurrent claimers never get the
        same execution. Each claim adds 1 to the execution's ``resume_attempts``.
        Child runs (``parent_id`` set) are never claimed: their parent resumes them."""
        ...

    async def admin_claim_due_waits(
        self, *, owner: str, ttl: timedelta, limit: int = 100
    ) -> builtins.list[Execution]:
        """The waker: take ``waiting`` executions, of any account, whose ``wake_at`` has come
        (earliest first): each becomes ``running``, leased by ``owner`` for ``ttl``, with no
        ``wake_at``, in one write. Concurrent claimers never get the same execution. Resume
        attempts are not counted: a wake is not a crash."""
        ...


@runtime_checkable
class EndNotices(Protocol):
    """What an execution store may offer besides ``ExecutionStore``: a signal that a run has
    ended, from whichever process ended it (PostgreSQL's hot path: LISTEN/NOTIFY). Waiters
    use it to wake at once instead of re-reading the run on a timer."""

    def watch_end(self, execution_id: str) -> AbstractAsyncContextManager[asyncio.Event]:
        """An event set once ``execution_id`` has ended and its final events are stored
        (events appended to a run whose status is final are committed), or when the signal
        may have been missed (its connection was lost): either way, read the run again. It
        is watched from the time the context is entered, so a run read after entering
        cannot end unseen. Best effort: a waiter still re-reads now and then."""
        ...
