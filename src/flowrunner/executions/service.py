"""``ExecutionService``: what the API (and the CLI client) can do with runs.

Start (idempotently), read, list, read logs, cancel, retry or resume, and follow a run's
events: replayed from the store, then live from the bus, with no gap and no duplicate.
Every call is scoped by account: another account's run behaves like a missing one.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import AsyncGenerator, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flowrunner.errors import Conflict, InvalidInput, NotFound
from flowrunner.executions import events as ev
from flowrunner.executions.bus import BusHealth, EventBus
from flowrunner.executions.executor import Executor
from flowrunner.executions.follow import Follower
from flowrunner.executions.inputs import check_run_input
from flowrunner.executions.logs import LogFilter, read_logs
from flowrunner.executions.on_failure import FailureFlows
from flowrunner.executions.recorder import checkpoint_progress
from flowrunner.executions.states import is_terminal
from flowrunner.executions.waits import ResumeLinks, Signals
from flowrunner.scripting.sandbox import Sandbox, SandboxHealth
from flowrunner.storage import Execution, ExecutionEvent, NewCheckpoint, NewEvent, Page, Store
from flowrunner.storage.protocols import DEFAULT_LIMIT
from flowrunner.storage.records import ExecutionStatus, JSONValue, utcnow

DEFAULT_MAX_INPUT = 1024 * 1024
RESUME_KEY_PREFIX = "resume:"
"""Idempotency key prefix of the one run that resumes a failed run."""


@dataclass(frozen=True, slots=True)
class Started:
    execution: Execution
    created: bool
    """False when the idempotency key had already started this run."""


class ExecutionService:
    def __init__(
        self,
        store: Store,
        executor: Executor,
        bus: EventBus,
        *,
        max_input_bytes: int = DEFAULT_MAX_INPUT,
        resume_links: ResumeLinks | None = None,
        lease_ttl: timedelta | None = None,
        on_failure: FailureFlows | None = None,
        sandbox: Sandbox | None = None,
    ) -> None:
        self._store = store
        self._sandbox = sandbox
        self._signals = Signals(store.executions)
        self._links = resume_links
        # Set for an executor of this process: a run is created holding its lease (one write
        # where create + acquire_lease were two), and the executor finds it held. An executor
        # elsewhere (a worker) takes the lease itself.
        self._lease_owner = executor.owner if lease_ttl else None
        self._lease_ttl = lease_ttl
        # The account-wide on-failure flow is set through here (the runner starts them).
        self.on_failure = on_failure or FailureFlows(store)
        self._runs = store.executions
        self._executor = executor
        self._bus = bus
        self._max_input = max_input_bytes
        self._follower = Follower(store, bus)

    # --- starting --------------------------------------------------------------------------

    async def start(
        self,
        account_id: str,
        flow_id: str,
        run_input: JSONValue,
        *,
        version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Started:
        """Queue a run of ``flow_id`` (its current version unless ``version``) and hand it to
        the executor. A known ``idempotency_key`` returns the run it started instead."""
        if idempotency_key is not None:
            try:
                known = await self._runs.get_by_idempotency_key(account_id, idempotency_key)
            except NotFound:
                pass
            else:
                return Started(_same_request(known, flow_id, run_input, version), created=False)
        check_run_input(run_input, self._max_input)
        try:
            execution = await self._create(account_id, flow_id, version, run_input, idempotency_key)
        except Conflict:
            if idempotency_key is None:
                raise
            # Two requests with the same key raced: the one that lost reports the winner's run.
            original = await self._runs.get_by_idempotency_key(account_id, idempotency_key)
            return Started(_same_request(original, flow_id, run_input, version), created=False)
        await self._executor.submit(execution)
        return Started(execution, created=True)

    # --- signals (durable waits, executions.waits) -----------------------------------------

    async def signal(
        self, account_id: str, execution_id: str, name: str, payload: JSONValue
    ) -> Execution:
        """Deliver signal ``name`` to the run waiting for it and resume the run here.
        ``Conflict`` (409) if it is not waiting for that signal now (not there yet, or
        already past it): signals are not buffered, the sender retries."""
        check_run_input(payload, self._max_input)
        run = await self._signals.deliver(account_id, execution_id, name, payload)
        return await self._resume(run, name)

    async def resume_link(self, token: str, payload: JSONValue) -> Execution:
        """Deliver a resume link's signal (``LinkExpired`` once its wait is over)."""
        if self._links is None:
            raise NotFound("unknown resume link")
        target = self._links.open(token)
        check_run_input(payload, self._max_input)
        try:
            run = await self._signals.deliver(
                target.account_id,
                target.execution_id,
                target.signal,
                payload,
                node_id=target.node_id,
            )
        except NotFound as exc:  # the run was deleted
            raise NotFound("unknown resume link") from exc
        return await self._resume(run, target.signal)

    async def _resume(self, run: Execution, name: str) -> Execution:
        node_id = run.wait.get("node_id") if run.wait else None
        event = NewEvent(
            ev.LOG,
            {"node_id": node_id, "level": "info", "message": f"signal '{name}' received",
             "signal": name},
            utcnow(),
        )  # fmt: skip
        stored = await self._runs.append_events(run.account_id, run.id, [event])
        await self._bus.publish(run.flow_id, stored)
        # Unleased and running: taken here now, or by crash recovery if this process dies.
        await self._executor.submit(run)
        return await self._runs.get(run.account_id, run.id)

    async def _create(
        self,
        account_id: str,
        flow_id: str,
        version: int | None,
        run_input: JSONValue,
        idempotency_key: str | None,
    ) -> Execution:
        """The queued run, leased to this process's executor. Its flow's current version is
        pinned by the store in the same write (no read of the flow first); only when that
        finds no flow with a version is the flow read, to say which error it is."""

        async def create(number: int | None) -> Execution:
            return await self._runs.create(
                account_id,
                flow_id=flow_id,
                flow_version=number,
                input=run_input,
                idempotency_key=idempotency_key,
                lease_owner=self._lease_owner,
                lease_ttl=self._lease_ttl,
            )

        if version is None:
            try:
                return await create(None)
            except NotFound:
                pass  # missing, deleted or without a version: _pinned_version says which
        return await create(await self._pinned_version(account_id, flow_id, version))

    async def _pinned_version(self, account_id: str, flow_id: str, version: int | None) -> int:
        flow = await self._store.flows.get(account_id, flow_id)  # NotFound when deleted
        number = flow.current_version if version is None else version
        if flow.current_version < 1:
            raise InvalidInput("the flow has no version to run yet", flow_id=flow_id)
        # Versions are numbered 1..current with no gaps and never deleted: no read needed.
        if not 1 <= number <= flow.current_version:
            raise NotFound(f"flow {flow_id} has no version {number}", flow_id=flow_id)
        return number

    async def wait(self, account_id: str, execution_id: str, within: float) -> Execution:
        """The execution once it ended, or as it is after ``within`` seconds."""
        deadline = time.monotonic() + within
        if self._executor.holds(execution_id):
            # Run by this process: its task ending is the signal, with no subscription and no
            # wake-up per event. The task's result is the run as its final write stored it (no
            # read); one that crashed or is still going is read (it ended, was suspended...).
            execution = await self._executor.wait(execution_id, within=within)
            if execution is None:
                execution = await self._runs.get(account_id, execution_id)
            if is_terminal(execution.status) or time.monotonic() >= deadline:
                return execution
        return await self._follower.until_end(account_id, execution_id, deadline)

    def held(self) -> int:
        """Runs this process's executor holds, running or waiting for a slot (metrics)."""
        active = getattr(self._executor, "active", 0)
        return active if isinstance(active, int) else 0

    def queued(self) -> int:
        """Runs this process's executor holds that wait for their first slot (metrics)."""
        queued = getattr(self._executor, "queued", 0)
        return queued if isinstance(queued, int) else 0

    def bus_health(self) -> BusHealth:
        return self._bus.health()

    def sandbox_health(self) -> SandboxHealth | None:
        """This process's script sandbox (None without one), read without starting it."""
        return None if self._sandbox is None else self._sandbox.health()

    # --- reading ---------------------------------------------------------------------------

    async def get(self, account_id: str, execution_id: str) -> Execution:
        """The run, with where it is (its runner keeps ``progress`` and ``current_node``)."""
        return await self._runs.get(account_id, execution_id)

    async def usage(self, account_id: str, execution_id: str) -> dict[str, Any]:
        """The run's model-call usage (llm and agent nodes): totals and per node. A finished
        run's is stored with it (older ones': in their final event); a running run's as of its
        last checkpoint."""
        execution = await self._runs.get(account_id, execution_id)
        found: Any = execution.usage
        if found is None and is_terminal(execution.status):
            # A run that ended before usage was kept on the execution: its final event.
            last = await self._runs.list_events(
                account_id, execution_id, after_seq=max(0, execution.last_event_seq - 1)
            )
            found = last[-1].data.get("usage") if last else None
        elif not is_terminal(execution.status):
            checkpoint = await self._runs.get_checkpoint(account_id, execution_id)
            found = checkpoint.resume.get("usage") if checkpoint else None
        if isinstance(found, Mapping):
            return dict(found)
        return {
            "calls": 0,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "total_tokens": 0,
            "nodes": {},
        }

    async def list(
        self,
        account_id: str,
        *,
        flow_id: str | None = None,
        status: Collection[ExecutionStatus] = (),
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
        parent_id: str | None = None,
    ) -> Page[Execution]:
        return await self._runs.list(
            account_id,
            parent_id=parent_id,
            limit=limit,
            cursor=cursor,
            status=status,
            flow_id=flow_id,
            created_after=created_after,
            created_before=created_before,
        )

    async def logs(
        self,
        account_id: str,
        execution_id: str,
        *,
        node_id: str | None = None,
        level: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after_seq: int = 0,
        limit: int = DEFAULT_LIMIT,
        types: Collection[str] = (ev.LOG,),
    ) -> tuple[builtins.list[ExecutionEvent], int | None]:
        """Log events matching every filter in ``seq`` order, and the ``after_seq`` of the
        next page (None on the last)."""
        wanted = LogFilter(node_id, level, since, until, types)
        return await read_logs(
            self._runs, account_id, execution_id, wanted, after_seq=after_seq, limit=limit
        )

    # --- changing --------------------------------------------------------------------------

    async def cancel(self, account_id: str, execution_id: str) -> Execution:
        """Stop the run (its running node is interrupted) and return it as recorded by its
        runner; ``Conflict`` if it already ended."""
        execution = await self._runs.get(account_id, execution_id)
        if is_terminal(execution.status):
            raise Conflict(f"execution is already {execution.status}", execution_id=execution_id)
        return await self._executor.cancel(execution)

    async def retry(self, account_id: str, execution_id: str, *, resume: bool = False) -> Started:
        """A new run of the same flow version and input; with ``resume``, a failed run's
        state is carried over and the new run starts at the node that failed.

        A failed run is resumed once: the resume is created under the idempotency key
        ``resume:<failed run id>``, so concurrent resumes of one run start one run and the
        others get it (``created=False``) while it is active; once it has ended, resuming the
        old run again is a ``Conflict`` naming it (resume the newer run instead)."""
        old = await self._runs.get(account_id, execution_id)
        if not is_terminal(old.status):
            raise Conflict(f"execution is still {old.status}", execution_id=execution_id)
        checkpoint = None
        failed_node = (old.error or {}).get("node_id") if resume else None
        if resume:
            if old.status != "failed":
                raise Conflict("only a failed execution can be resumed", execution_id=execution_id)
            checkpoint = await self._runs.get_checkpoint(account_id, execution_id)
        key = f"{RESUME_KEY_PREFIX}{old.id}" if resume else None
        try:
            execution = await self._runs.create(
                account_id,
                flow_id=old.flow_id,
                flow_version=old.flow_version,
                input=old.input,
                idempotency_key=key,
            )
        except Conflict:
            if key is None:
                raise
            return Started(await self._resumed_already(account_id, old.id, key), created=False)
        note: dict[str, Any] = {"retry_of": old.id}
        if checkpoint is not None and isinstance(failed_node, str):
            # The failed node's input is the output of the node the checkpoint was saved after;
            # the new run starts with the progress the failed one had reached.
            note["resume_from"] = failed_node
            await self._runs.record_step(
                account_id,
                execution.id,
                [ev.status_event("queued", **note)],
                checkpoint=NewCheckpoint(
                    shared=checkpoint.shared,
                    next_node=failed_node,
                    results=checkpoint.results,
                    resume={**checkpoint.resume, "error": None},
                ),
                progress=checkpoint_progress(checkpoint.results, checkpoint.resume),
            )
        else:
            await self._runs.append_events(
                account_id, execution.id, [ev.status_event("queued", **note)]
            )
        await self._executor.submit(execution)
        return Started(execution, created=True)

    async def _resumed_already(self, account_id: str, failed_id: str, key: str) -> Execution:
        """The run an earlier resume of ``failed_id`` started, if it is still going."""
        resumed = await self._runs.get_by_idempotency_key(account_id, key)
        if is_terminal(resumed.status):
            raise Conflict(
                f"execution was already resumed as {resumed.id}, which is {resumed.status};"
                " resume that run instead",
                execution_id=failed_id,
                resumed_as=resumed.id,
            )
        return resumed

    # --- following -------------------------------------------------------------------------

    async def follow(
        self, account_id: str, execution_id: str, *, after_seq: int = 0
    ) -> AsyncGenerator[ExecutionEvent, None]:
        """Every event of the run with ``seq > after_seq``, then live ones, until its end."""
        return await self._follower.execution(account_id, execution_id, after_seq=after_seq)

    async def follow_flow(
        self,
        account_id: str,
        flow_id: str,
        *,
        since: datetime | None = None,
        after: Mapping[str, int] | None = None,
    ) -> AsyncGenerator[ExecutionEvent, None]:
        """Live events of every run of one flow; with a cursor (``since``, ``after`` per
        run), first the events missed (``Follower.flow``)."""
        return await self._follower.flow(account_id, flow_id, since=since, after=after)


def _same_request(
    known: Execution, flow_id: str, run_input: JSONValue, version: int | None
) -> Execution:
    """``known`` if it was started by this same request; ``Conflict`` if the key was used for
    another one (a client bug that replaying would hide: it would get a run it did not ask
    for)."""
    if (
        known.flow_id != flow_id
        or known.input != run_input
        or (version is not None and known.flow_version != version)
    ):
        raise Conflict(
            "this Idempotency-Key was already used for a different request",
            idempotency_key=known.idempotency_key,
            execution_id=known.id,
        )
    return known
