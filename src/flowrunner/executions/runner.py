"""The runner: one execution from its pinned flow version to a terminal status.

It is the same code whoever calls it (the in-process executor today, a Celery task later):
load the pinned version, compile it (cached per version checksum), resolve the account's
secrets, start or resume the engine from the last checkpoint, and record every node through
the store. It never decides *where* or *when* a run happens; executors do.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog

from flowrunner.definition import CompiledFlow, FlowDefinition
from flowrunner.engine import ErrorInfo, Pause
from flowrunner.errors import (
    Conflict,
    DefinitionError,
    FlowrunnerError,
    ResumeLimitExceeded,
    VaultError,
)
from flowrunner.executions import events as ev
from flowrunner.executions.bus import EventBus
from flowrunner.executions.cache import FlowCache
from flowrunner.executions.checkpoint_refs import unpack
from flowrunner.executions.llm_usage import RunUsage
from flowrunner.executions.payloads import bounded, error_details
from flowrunner.executions.recorder import Recorder, Suspended, uninterrupted
from flowrunner.executions.run_kv import AccountKV
from flowrunner.executions.sealing import Keys, Sealer, unseal
from flowrunner.executions.sizes import RunLimits
from flowrunner.executions.states import is_terminal, transition
from flowrunner.executions.waits import (
    LinkTarget,
    ResumeLinks,
    RunWaits,
    signal_nodes,
)
from flowrunner.fairness import ACCOUNT_ID
from flowrunner.logging import masking
from flowrunner.nodes.control import STORED_FLOWS
from flowrunner.nodes.live import LIVE_SINK
from flowrunner.nodes.llm.usage import USAGE_METER
from flowrunner.nodes.store import RUN_KV
from flowrunner.nodes.wait import WAITS
from flowrunner.secrets import Masker
from flowrunner.storage import Execution, NewDelivery, NewEvent, Store
from flowrunner.storage.records import Clock, ExecutionStatus, appended, utcnow

if TYPE_CHECKING:
    from flowrunner.executions.on_failure import FailureFlows
    from flowrunner.executions.subflows import SubflowHost
    from flowrunner.webhooks import EventOutbox

SecretsResolver = Callable[[str], Awaitable[Mapping[str, Any]]]
"""account id → that account's secrets in clear (the vault provides it)."""

log = structlog.get_logger("flowrunner.executions")

DEFAULT_PAYLOAD_LIMIT = 64 * 1024
# The settings' defaults (config.py): a runner built without settings is bounded too.
DEFAULT_RUN_LIMITS = RunLimits(node_output=8 << 20, shared=16 << 20, checkpoint=64 << 20)
DEFAULT_MAX_RESUME_ATTEMPTS = 3
# How deep ``record_canceled`` looks for children: sub-flows nest at most this deep (the
# subflow host's own limit is lower), so the walk is bounded.
MAX_CHILD_DEPTH = 32


@dataclass(slots=True)
class RunControl:
    """How an executor steers a run from outside: cancel it, or ask it to stop at the next
    node boundary because the process is shutting down."""

    cancel_requested: bool = False
    suspend_requested: bool = False


class Runner:
    def __init__(
        self,
        store: Store,
        bus: EventBus,
        flows: FlowCache,
        *,
        secrets: SecretsResolver | None = None,
        payload_limit: int = DEFAULT_PAYLOAD_LIMIT,
        limits: RunLimits = DEFAULT_RUN_LIMITS,
        clock: Clock = utcnow,
        keys: Keys | None = None,
        max_resume_attempts: int = DEFAULT_MAX_RESUME_ATTEMPTS,
        subflows: SubflowHost | None = None,
        llm_token_budget: int | None = None,
        webhooks: EventOutbox | None = None,
        on_failure: FailureFlows | None = None,
        resume_links: ResumeLinks | None = None,
        wait_threshold: float = math.inf,
        checkpoint_window: float = 0.0,
    ) -> None:
        self._store = store
        # How long a run may go without a checkpoint between replayable nodes (0: one after
        # every node; executions.recorder.Recorder._skippable).
        self._checkpoint_window = checkpoint_window
        # Starts the on-failure flow of a run that ended failed (None: nothing is started).
        self._on_failure = on_failure
        # Durable waits (executions.waits): the resume links of wait_for nodes, and how long
        # a delay sleeps in memory before it waits durably instead (a runner built without
        # the settings' threshold sleeps every delay in memory: nobody may run its waker).
        self._links = resume_links
        self._wait_threshold = wait_threshold
        # Webhook events go into the outbox with the status changes that cause them.
        self._webhooks = webhooks
        # Runs stored sub-flows (``flow: <name>``) as child executions; None: they fail.
        self.subflows = subflows
        self._bus = bus
        self._flows = flows
        self._secrets = secrets
        self._limit = payload_limit
        self._limits = limits
        self._clock = clock
        self._keys = keys  # seals checkpoint parts that hold a secret (the vault's keyring)
        self._max_resumes = max_resume_attempts
        self._llm_budget = llm_token_budget  # per account and month; None: no limit

    async def run(self, execution: Execution, control: RunControl | None = None) -> Execution:
        """Run (or resume) ``execution`` until it ends, is suspended or waits durably
        (``waiting``: see ``executions.waits``); returns its record.

        A cancel (``control.cancel_requested`` then ``Task.cancel``) ends it ``canceled``; a
        suspend leaves it ``running`` with its checkpoint saved, for another executor. Either
        way, and failed, it keeps the progress its last checkpoint recorded. If the runner
        itself fails (not a node: the store refusing a write), the crash is recorded in the
        run's history and raised: recovery resumes the run, at most ``max_resume_attempts``
        times without progress (the poison-run guard).
        """
        try:
            return await self._run(execution, control)
        except Exception as exc:
            await self._record_crash(execution, exc)
            raise

    async def _run(self, execution: Execution, control: RunControl | None) -> Execution:
        control = control or RunControl()
        store = self._store.executions
        secrets = dict(await self._secrets(execution.account_id)) if self._secrets else {}
        masker = Masker.for_secrets(secrets)
        with (
            structlog.contextvars.bound_contextvars(
                execution_id=execution.id,
                flow_id=execution.flow_id,
                account_id=execution.account_id,
                node_id=None,
            ),
            masking(masker.mask),
        ):
            if execution.resume_attempts > self._max_resumes:
                return await self._give_up(execution, masker)
            try:
                compiled = await self._flows.load(
                    self._store.flows,
                    execution.account_id,
                    execution.flow_id,
                    execution.flow_version,
                )
            except (DefinitionError, FlowrunnerError) as exc:
                return await self._fail_early(execution, exc, masker)
            checkpoint = None
            if execution.status != "queued" or execution.last_event_seq > 0:
                # Only a resumed (or resume-retried) run can have one: fresh runs skip the read.
                checkpoint = await store.get_checkpoint(execution.account_id, execution.id)
                if checkpoint is not None:  # big values are stored once, by reference
                    checkpoint = unpack(checkpoint, execution.input)
            start: tuple[datetime, list[NewDelivery]] | None = None
            queued = execution.status == "queued"
            if queued:
                now = self._clock()
                outbox = await self._outbox(execution, "running", now, compiled.definition)
                if self._defers_start(execution, compiled):
                    start = (now, outbox)  # stored with the recorder's first write
                else:
                    execution = await uninterrupted(
                        transition(store, execution, "running", now=now, outbox=outbox)
                    )
                    self._committed(outbox)
            recorder = Recorder(
                store,
                self._bus,
                execution,
                masker,
                payload_limit=self._limit,
                limits=self._limits,
                node_count=compiled.node_count,
                should_suspend=lambda: control.suspend_requested,
                sealer=Sealer(masker, self._keys),
                outbox=(
                    None
                    if self._webhooks is None
                    else _RunOutbox(self._webhooks, execution, compiled.definition)
                ),
                replayable=compiled.replayable,
                checkpoint_window=self._checkpoint_window,
                start=start,
            )
            # Status events go out with the first node's batch: one write fewer per run.
            if queued:
                recorder.add(ev.status_event("running"))
            else:
                where = checkpoint.next_node if checkpoint else None
                log.info("execution resumed", from_node=where)
                woken = _woken_from(execution, where)
                recorder.add(ev.status_event("running", resumed=True, from_node=where, **woken))
            return await self._drive(
                execution, compiled, checkpoint, recorder, masker, secrets, control
            )

    async def _drive(
        self,
        execution: Execution,
        compiled: CompiledFlow,
        checkpoint: Any,
        recorder: Recorder,
        masker: Masker,
        secrets: Mapping[str, Any],
        control: RunControl,
    ) -> Execution:
        try:
            kwargs = _start_arguments(execution, checkpoint, self._keys)
            if kwargs is None:  # the last checkpoint was after the last node: nothing left
                last = checkpoint.resume.get("last_node")
                output = unseal(checkpoint.results.get(str(last)), self._keys)
                return await self._complete(execution, recorder, masker, output)
            if checkpoint is None:
                self._seed_resume_links(execution, compiled, kwargs["results"])
        except VaultError as exc:  # sealed under a key no longer in the keyring
            details = error_details(exc, masker)
            log.info("execution failed", error=details["message"])
            return await self._finish(
                execution, "failed", ev.error_event(details), recorder, error=details
            )
        seed = checkpoint.resume.get("usage") if checkpoint else None
        usage = RunUsage(
            self._store.kv,
            execution.account_id,
            budget=self._llm_budget,
            seed=seed if isinstance(seed, Mapping) else None,
        )
        recorder.usage = usage
        account = ACCOUNT_ID.set(execution.account_id)  # whose scripts the sandbox runs
        hosted = (
            self.subflows.scope(self, execution, control, compiled.definition.name)
            if self.subflows is not None
            else None
        )
        try:
            result = await compiled.run(
                observer=recorder.observe,
                checkpoint=recorder.checkpoint,
                size_check=self._limits.check_output,
                secrets=secrets,
                # The store node's key-value store: the run's account's, never another's.
                scoped={
                    STORED_FLOWS: hosted,
                    RUN_KV: AccountKV(self._store.kv, execution.account_id),
                    LIVE_SINK: recorder.live,  # streaming nodes' text, to live subscribers
                    USAGE_METER: usage,  # llm tokens: the run's totals, the account's budget
                    # Durable waits: a child run is run inside its parent's task, so only a
                    # top-level run can stop and wait without holding anything.
                    WAITS: (
                        RunWaits(execution, self._links, self._wait_threshold, self._clock)
                        if execution.parent_id is None
                        else None
                    ),
                },
                execution={
                    "id": execution.id,
                    "flow_id": execution.flow_id,
                    "flow_version": execution.flow_version,
                    "flow": compiled.definition.name,
                },
                **kwargs,
            )
        except Pause as pause:
            return await self._park(execution, recorder, pause)
        except Suspended as stop:
            await recorder.close()
            log.info("execution suspended", next_node=stop.next_node)
            return recorder.execution
        except asyncio.CancelledError:
            if not control.cancel_requested:
                raise  # shutdown past the grace period: the checkpoint is the resume point
            _uncancel()
            log.info("execution canceled")
            return await self._finish(execution, "canceled", ev.status_event("canceled"), recorder)
        except Exception as exc:
            details = error_details(exc, masker)
            log.info("execution failed", node_id=details.get("node_id"), error=details["message"])
            return await self._finish(
                execution, "failed", ev.error_event(details), recorder, error=details
            )
        finally:
            ACCOUNT_ID.reset(account)
        return await self._complete(execution, recorder, masker, result.output)

    def _defers_start(self, execution: Execution, compiled: CompiledFlow) -> bool:
        """Whether a queued run's ``running`` move may wait for its first write
        (``Recorder`` ``start``): a fresh run (nothing stored yet, so no checkpoint either)
        whose first node is replayable, when checkpoints may be skipped at all. A run of
        replayable nodes then costs one write fewer; a node with an effect still starts only
        after the move is stored (with the checkpoint before it)."""
        return (
            self._checkpoint_window > 0
            and execution.last_event_seq == 0
            and compiled.engine_flow.start.node_id in compiled.replayable
        )

    def _seed_resume_links(
        self, execution: Execution, compiled: CompiledFlow, results: dict[str, Any]
    ) -> None:
        """``${results.<wait_for node>.resume_url}`` works before that node runs (the link
        goes into the email sent before the wait): each ``wait_for`` node's result starts as
        its resume link, and the node's output replaces it."""
        if self._links is None or execution.parent_id is not None:
            return
        for node_id, signal in signal_nodes(compiled.engine_flow.nodes()).items():
            target = LinkTarget(execution.account_id, execution.id, node_id, signal)
            results[node_id] = {"resume_url": self._links.url(target), "signal": signal}

    async def _park(self, execution: Execution, recorder: Recorder, pause: Pause) -> Execution:
        """A node waits durably: the run becomes ``waiting`` with its wait record, holding no
        lease, and its task ends (``executions.waits``). A cancel that came first stands."""
        store = self._store.executions
        wake_at = pause.data.get("wake_at")
        wait = pause.data["wait"]
        await recorder.settle()
        details: dict[str, Any] = {"node_id": pause.node_id}
        if wake_at is not None:
            details["wake_at"] = wake_at.isoformat()
        if wait.get("signal") is not None:
            details["signal"] = wait["signal"]
        # The run's events, its ``waiting`` one last, are stored before it is seen waiting:
        # a waiting run holds no lease, so its process may be stopped (or killed) at once,
        # and an event left for after the move would be lost with it. A process dying after
        # the events and before the move leaves the run ``running`` under an expiring lease:
        # recovery resumes it at the waiting node, which waits again (a second ``waiting``).
        recorder.add(ev.status_event("waiting", **details))
        await recorder.flush()
        execution = recorder.execution  # the flush stored a deferred ``running`` move
        try:
            parked = await uninterrupted(
                transition(store, execution, "waiting", wake_at=wake_at, wait=wait)
            )
        except Conflict:  # canceled meanwhile: its ``canceled`` event follows the ``waiting``
            await recorder.close()
            return await store.get(execution.account_id, execution.id)
        log.info("execution waiting", **details)
        await recorder.close()
        return parked

    async def _complete(
        self, execution: Execution, recorder: Recorder, masker: Masker, output: Any
    ) -> Execution:
        output = bounded(output, masker, self._limit)
        log.info("execution completed")
        return await self._finish(
            execution, "completed", ev.complete_event(output), recorder, output=output
        )

    async def _finish(
        self,
        execution: Execution,
        status: ExecutionStatus,
        final: NewEvent,
        recorder: Recorder | None = None,
        **fields: Any,
    ) -> Execution:
        """Store the terminal status with the final event, and the events still buffered
        before it, in one atomic write: whoever sees the final event finds the run finished,
        and no crash can leave a finished run without them (recovery never resumes a finished
        run, so they would be lost for good). If a concurrent cancel ended the run first, its
        status (and its event) stand."""
        store = self._store.executions
        if recorder is not None:
            await recorder.settle()
        now = self._clock()
        definition = await self._definition(execution)
        usage = recorder.usage if recorder is not None else None
        if usage is not None and usage.used:  # model calls' tokens, kept with the run
            fields["usage"] = usage.snapshot()
            # In the final event too, for stream readers.
            final = NewEvent(final.type, {**final.data, "usage": fields["usage"]}, final.time)
        try:
            outbox = await self._outbox(
                execution, status, now, definition,
                output=fields.get("output"), error=fields.get("error"),
            )  # fmt: skip

            start = None

            async def write(events: list[NewEvent], entries: list[NewDelivery]) -> Execution:
                nonlocal start
                # A run that stored nothing since it was queued moves to running here too,
                # in the same write (its ``started`` webhook first).
                start = recorder.take_start() if recorder is not None else None
                current = recorder.execution if recorder is not None else execution
                began, started = start if start is not None else (None, [])
                # The node events' webhook entries go with the status change's.
                return await transition(
                    store, current, status, now=now, outbox=[*started, *outbox, *entries],
                    events=events, started_at=began, **fields,
                )  # fmt: skip

            if recorder is not None:
                done = await recorder.end(final, write)
            else:
                done = await write([final], [])
            self._committed([*(start[1] if start else []), *outbox])
        except Conflict:
            if recorder is not None:
                await recorder.close()  # the last node's events, without a final event
            return await store.get(execution.account_id, execution.id)
        except Exception:
            if recorder is not None:
                await self._keep_attempt(execution, recorder)
            raise
        if recorder is None:
            await self._bus.publish(execution.flow_id, appended(done, [final]))
        if done.status == "failed" and self._on_failure is not None:
            await _start_on_failure(self._on_failure, done, definition)
        return done

    async def _keep_attempt(self, execution: Execution, recorder: Recorder) -> None:
        """After a final write that failed (refused, or its outcome unknown), best effort: a
        run still active is resumed by recovery at its last node, and its history keeps this
        attempt of that node (without a final event) if the store takes it. A run the write
        did finish has those events already: nothing may follow its final event."""
        try:
            current = await self._store.executions.get(execution.account_id, execution.id)
            if not is_terminal(current.status):
                await recorder.close()
        except Exception:
            log.warning("last node's events not stored", exc_info=True)

    async def _outbox(
        self,
        execution: Execution,
        status: ExecutionStatus,
        now: datetime,
        definition: FlowDefinition | None,
        *,
        output: Any = None,
        error: Any = None,
    ) -> list[NewDelivery]:
        """The webhook events of a status change, for the store to write with it."""
        if self._webhooks is None:
            return []
        return await self._webhooks.entries(
            execution,
            status,
            now,
            flow_name=definition.name if definition else None,
            flow_webhooks=definition.metadata.webhooks if definition else (),
            output=output,
            error=error,
        )

    def _committed(self, outbox: list[NewDelivery]) -> None:
        if outbox and self._webhooks is not None:
            self._webhooks.committed()

    async def _definition(self, execution: Execution) -> FlowDefinition | None:
        """The run's flow definition (cached compiled), or None when it does not load (or
        nobody needs it: no webhooks, no on-failure flows)."""
        if self._webhooks is None and self._on_failure is None:
            return None
        try:
            compiled = await self._flows.load(
                self._store.flows, execution.account_id, execution.flow_id, execution.flow_version
            )
        except (DefinitionError, FlowrunnerError):
            return None
        return compiled.definition

    async def record_canceled(self, execution: Execution) -> Execution:
        """Cancel a run no engine of this process runs: still queued or loading its flow, or
        held by no live process. Its active children are canceled too (nobody would resume
        them: recovery never claims a child). An owner still alive elsewhere fails its final
        compare-and-set and keeps this status. A run canceled in the engine is ``_drive``'s.
        """
        store = self._store.executions
        current = await store.get(execution.account_id, execution.id)
        if is_terminal(current.status):
            return current
        done = await self._finish(current, "canceled", ev.status_event("canceled"))
        if done.status == "canceled":
            await self._cancel_children(done)
        return done

    async def _cancel_children(self, parent: Execution) -> None:
        """Record ``canceled`` on the active children of ``parent``, and on theirs."""
        store = self._store.executions
        pending = [parent.id]
        for _ in range(MAX_CHILD_DEPTH):  # bounded: a tree of children, level by level
            if not pending:
                return
            parents, pending = pending, []
            for parent_id in parents:
                page = await store.list(
                    parent.account_id, parent_id=parent_id, status=("queued", "running"),
                    limit=100,
                )  # fmt: skip
                for child in page.items:
                    # A child that ended meanwhile keeps its status (``_finish`` reads it).
                    await self._finish(
                        child, "canceled", ev.status_event("canceled", by_parent=parent_id)
                    )
                    pending.append(child.id)

    async def _give_up(self, execution: Execution, masker: Masker) -> Execution:
        """The poison-run guard: a run recovery keeps taking over without it ever saving a
        checkpoint is failed, with its last crash, instead of re-running its node forever."""
        store = self._store.executions
        recent = await store.list_events(
            execution.account_id, execution.id, after_seq=max(0, execution.last_event_seq - 50)
        )
        crashes = [e.data for e in recent if e.type == ev.LOG and e.data.get("crash")]
        last = crashes[-1].get("message") if crashes else None
        exc = ResumeLimitExceeded(
            execution.resume_attempts, self._max_resumes, last if isinstance(last, str) else None
        )
        details = error_details(exc, masker)
        log.warning("execution failed: resume limit", attempts=execution.resume_attempts)
        return await self._finish(execution, "failed", ev.error_event(details), error=details)

    async def _record_crash(self, execution: Execution, exc: Exception) -> None:
        """Best effort: the crash goes into the run's history (secrets masked), so the
        poison-run guard can name it if the run never gets past it."""
        try:
            secrets = dict(await self._secrets(execution.account_id)) if self._secrets else {}
            details = error_details(exc, Masker.for_secrets(secrets))
            event = NewEvent(
                ev.LOG,
                {
                    "node_id": None,
                    "level": "error",
                    "message": details["message"],
                    "crash": details,
                },
                utcnow(),
            )
            stored = await self._store.executions.append_events(
                execution.account_id, execution.id, [event]
            )
            await self._bus.publish(execution.flow_id, stored)
        except Exception:
            log.warning("could not record the crash", exc_info=True)

    async def _fail_early(
        self, execution: Execution, exc: FlowrunnerError, masker: Masker
    ) -> Execution:
        """The pinned version is gone or does not compile: the run fails before any node."""
        details = error_details(exc, masker)
        return await self._finish(execution, "failed", ev.error_event(details), error=details)


@dataclass(frozen=True, slots=True)
class _RunOutbox:
    """The webhook outbox bound to one run, for its recorder (node events)."""

    webhooks: EventOutbox
    execution: Execution
    definition: FlowDefinition

    async def entries(self, events: Sequence[NewEvent]) -> list[NewDelivery]:
        return await self.webhooks.node_entries(
            self.execution,
            events,
            flow_name=self.definition.name,
            flow_webhooks=self.definition.metadata.webhooks,
        )

    def committed(self) -> None:
        self.webhooks.committed()


async def _start_on_failure(
    on_failure: FailureFlows, failed: Execution, definition: FlowDefinition | None
) -> None:
    """After the failure is stored (a process dying in between starts nothing: the failed
    run and its error are there to act on)."""
    try:
        await on_failure.failed(
            failed,
            definition.metadata.on_failure if definition else None,
            definition.name if definition else None,
        )
    except FlowrunnerError:
        log.warning("on-failure flow not started", exc_info=True)


def _start_arguments(
    execution: Execution, checkpoint: Any, keys: Keys | None
) -> dict[str, Any] | None:
    """Engine arguments for a fresh start, or to resume after ``checkpoint`` (its sealed
    parts opened with ``keys``); None if the run had already passed its last node."""
    if checkpoint is None:
        raw = execution.input
        shared = dict(raw) if isinstance(raw, Mapping) else {}
        return {"input": raw, "shared": _deep(shared), "results": {}}
    if checkpoint.next_node is None:
        return None
    results = {key: unseal(value, keys) for key, value in checkpoint.results.items()}
    resume = checkpoint.resume
    error_data = unseal(resume.get("error"), keys)
    error = ErrorInfo(**error_data) if isinstance(error_data, Mapping) else None
    node_input = error.data if error else results.get(str(resume.get("last_node")))
    return {
        "input": node_input,
        "shared": dict(unseal(checkpoint.shared, keys) or {}),
        "results": results,
        "start_at": checkpoint.next_node,
        "error": error,
        "steps": int(resume.get("steps", 0)),
    }


def _woken_from(execution: Execution, next_node: str | None) -> dict[str, Any]:
    """``{"woken": True}`` when the run resumes at the node of its durable wait (the waker or
    a signal took it back; also a crash while that node ran again): the same run going on,
    which the metrics do not count as a new start."""
    wait = execution.wait
    if wait is None or next_node not in (wait.get("node_id"), None):
        return {}
    return {"woken": True}


def _deep(value: Any) -> Any:
    from flowrunner.executions.payloads import to_json

    return to_json(value)


def _uncancel() -> None:
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()
