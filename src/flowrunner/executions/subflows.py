"""Stored sub-flows on the server: a ``flow`` node that names a flow of the account runs it as
a **child execution**, linked to its parent by ``parent_id``.

The child runs inside the parent's task, through the same ``Runner`` (its own events,
checkpoints and status), so it needs no executor slot of its own (a parent waiting for a
child that waits for a slot could never finish) and it stops with its parent:

- **cancel**: the child's ``RunControl`` sees the parent's cancel, so the interrupted child
  records ``canceled`` and the parent then does too; a child canceled on its own (or whose
  parent was canceled by another process) is noticed by the lease keeper and stopped.
- **suspend / crash**: the child stops at its checkpoint; crash recovery never claims a child
  (the store skips them), the parent is resumed at the ``flow`` node and finds its child again
  by an idempotency key made of the parent, the node visit and the attempt, then resumes it
  instead of starting a duplicate (a completed child is not run again: its output is reused;
  a failed one fails the attempt again, and a retry finds or starts the next attempt's).
- **recursion**: every run knows the chain of flows above it; a flow already in the chain, or
  a chain deeper than ``max_depth``, fails the node with the chain in the message.

Which version runs: the node's ``version``, else the version that was current when the
parent run started (``started_at``), so a resumed parent pins the same one again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import structlog

from flowrunner import jsontext
from flowrunner.errors import Conflict, ExecutionError, InvalidInput, NotFound, StorageError
from flowrunner.executions import events as ev
from flowrunner.executions.payloads import to_json
from flowrunner.executions.runner import RunControl
from flowrunner.executions.states import is_terminal, transition
from flowrunner.flows.references import find_flow, version_at
from flowrunner.nodes.base import SECRETS, Call
from flowrunner.nodes.control import StoredFlows
from flowrunner.secrets import Masker
from flowrunner.storage import Execution, Store

if TYPE_CHECKING:
    from flowrunner.executions.runner import Runner

log = structlog.get_logger("flowrunner.executions")

DEFAULT_MAX_DEPTH = 8
# How often a child held by another process is looked at while the parent waits for it.
POLL = 0.5


class ChildControl(RunControl):
    """A child run's control: canceled or suspended with its parent, or canceled alone.
    ``chain`` is the flows of the runs above the child, outermost first."""

    __slots__ = ("_alone", "_parent", "chain")

    def __init__(self, parent: RunControl, chain: tuple[tuple[str, str], ...] = ()) -> None:
        self._parent = parent
        self._alone = False
        self.chain = chain

    @property
    def cancel_requested(self) -> bool:
        return self._alone or self._parent.cancel_requested

    @cancel_requested.setter
    def cancel_requested(self, value: bool) -> None:
        self._alone = value

    @property
    def suspend_requested(self) -> bool:
        return self._parent.suspend_requested

    @suspend_requested.setter
    def suspend_requested(self, value: bool) -> None:
        pass  # a child suspends when its parent does


class SubflowHost:
    """What runs stored sub-flows in one process: built once, used by the runner per run."""

    def __init__(
        self,
        store: Store,
        *,
        owner: str,
        lease_ttl: timedelta = timedelta(seconds=30),
        max_depth: int = DEFAULT_MAX_DEPTH,
    ) -> None:
        self.store = store
        self.owner = owner
        self.lease_ttl = lease_ttl
        self.max_depth = max_depth

    def scope(
        self, runner: Runner, execution: Execution, control: RunControl, flow_name: str
    ) -> StoredFlows:
        """What the ``flow`` nodes of this run call; knows the chain of runs above it."""
        above = control.chain if isinstance(control, ChildControl) else ()
        return _Scope(self, runner, execution, control, (*above, (execution.flow_id, flow_name)))


class _Scope:
    """The stored sub-flows of one running execution (the parent)."""

    def __init__(
        self,
        host: SubflowHost,
        runner: Runner,
        parent: Execution,
        control: RunControl,
        chain: tuple[tuple[str, str], ...],
    ) -> None:
        self.host = host
        self.runner = runner
        self.parent = parent
        self.control = control
        self.chain = chain
        # Attempts per node visit in this process (see ``_child``).
        self._attempts: dict[str, int] = {}
        # (flow, version) → (flow id, version, name): pinned for the run, so a node visited
        # again (a loop, a batch) reads nothing.
        self._pins: dict[tuple[str, int | None], tuple[str, int, str]] = {}

    async def run_stored(
        self, call: Call, flow: str, version: int | None, run_input: Any
    ) -> tuple[Any, str | None]:
        node_id = call.ctx.node_id
        pin = self._pins.get((flow, version))
        if pin is None:
            pin = self._pins[flow, version] = await self._resolve(node_id, flow, version)
        target_id, number, name = pin
        names = " → ".join(n for _, n in self.chain)
        if any(flow_id == target_id for flow_id, _ in self.chain):
            raise ExecutionError(
                f"node '{node_id}': sub-flow recursion: {names} → {name}", node_id=node_id
            )
        if len(self.chain) >= self.host.max_depth:
            raise ExecutionError(
                f"node '{node_id}': sub-flows nest deeper than {self.host.max_depth} "
                f"({names} → {name})",
                node_id=node_id,
            )
        # The child's input is stored in its row: secret values never are (masked, like every
        # payload a run records); a child reads the account's secrets itself.
        masked = Masker.for_secrets(call.ctx.scoped(SECRETS)).mask(to_json(run_input))
        child = await self._child(call, target_id, number, masked)
        if not is_terminal(child.status):
            child = await self._drive(child)
        return await self._outcome(node_id, name, child)

    # --- finding the child -----------------------------------------------------------------

    async def _resolve(self, node_id: str, flow: str, version: int | None) -> tuple[str, int, str]:
        flows = self.host.store.flows
        account_id = self.parent.account_id
        try:
            target = await find_flow(flows, account_id, flow)
            if version is None:
                started = self.parent.started_at or self.parent.created_at
                return target.id, await version_at(flows, target, started), target.name
        except (NotFound, InvalidInput) as exc:
            raise ExecutionError(f"node '{node_id}': {exc.message}", node_id=node_id) from exc
        if version > target.current_version:
            raise ExecutionError(
                f"node '{node_id}': flow '{flow}' has no version {version}", node_id=node_id
            )
        return target.id, version, target.name

    async def _child(self, call: Call, flow_id: str, number: int, run_input: Any) -> Execution:
        """This attempt's child: the one an earlier run of the parent created for the same
        node visit and attempt (it crashed meanwhile), else a new one.

        Attempts are counted per visit from 1 in each process that runs the parent, so a
        resumed parent replays the same sequence: attempt 1 finds the first child (completed:
        reused; failed: the node fails again and its retry finds the second), and so on."""
        ctx = call.ctx
        visit = [list(ctx.flow_path), ctx.node_id, ctx.steps, call.index]
        digest = hashlib.sha256(jsontext.dumps(visit).encode()).hexdigest()[:32]
        attempt = self._attempts[digest] = self._attempts.get(digest, 0) + 1
        key = f"subflow:{self.parent.id}:{digest}:{attempt}"
        runs = self.host.store.executions
        try:
            return await runs.create(
                self.parent.account_id,
                flow_id=flow_id,
                flow_version=number,
                input=run_input,
                idempotency_key=key,
                parent_id=self.parent.id,
            )
        except Conflict:
            return await runs.get_by_idempotency_key(self.parent.account_id, key)

    # --- running it ------------------------------------------------------------------------

    async def _drive(self, child: Execution) -> Execution:
        runs = self.host.store.executions
        try:
            child = await runs.acquire_lease(
                child.account_id, child.id, owner=self.host.owner, ttl=self.host.lease_ttl
            )
        except Conflict:
            return await self._wait_elsewhere(child)
        control = ChildControl(self.control, self.chain)
        task = asyncio.current_task()
        # Stopped between renewals, never cancelled mid-query (that would abandon a database
        # connection).
        stopping = asyncio.Event()
        keeper = asyncio.get_running_loop().create_task(self._keep(child, control, task, stopping))
        done: Execution | None = None
        try:
            done = await self.runner.run(child, control)
            return done
        except Exception as exc:
            # The runner records a run's own failures; this is the machinery failing (the
            # store): the child must not stay active with nobody to resume it.
            with contextlib.suppress(StorageError):
                await transition(
                    runs, child, "failed", error={"message": f"sub-flow run broke: {exc}"}
                )
            raise
        finally:
            stopping.set()
            await asyncio.wait([keeper])
            if done is None or not is_terminal(done.status):
                # Suspended or interrupted: expire the lease so the resumed parent takes it.
                with contextlib.suppress(StorageError):
                    await runs.renew_lease(
                        child.account_id, child.id, owner=self.host.owner, ttl=timedelta(0)
                    )

    async def _keep(
        self,
        child: Execution,
        control: ChildControl,
        task: asyncio.Task[Any] | None,
        stopping: asyncio.Event,
    ) -> None:
        """Renew the child's lease while it runs, and stop it when it (or its parent) was
        canceled by another process: their owner records only the status."""
        runs = self.host.store.executions
        interval = max(self.host.lease_ttl.total_seconds() / 3, 0.05)
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await stopping.wait()
            if stopping.is_set():
                return
            try:
                try:
                    held = await runs.renew_lease(
                        child.account_id, child.id, owner=self.host.owner, ttl=self.host.lease_ttl
                    )
                except Conflict:
                    # No lease left: the child ended, and a final status lets the lease go
                    # (states.transition), a cancel from outside as well as its own end.
                    held = await runs.get(child.account_id, child.id)
                parent = await runs.get(self.parent.account_id, self.parent.id)
            except NotFound:
                return
            except StorageError:
                log.warning("child lease renewal failed", execution_id=child.id, exc_info=True)
                continue
            if control.cancel_requested:
                return  # being canceled already (with its parent): its runner records it
            if held.status == "canceled" or parent.status == "canceled":
                log.info("child run canceled from outside", execution_id=child.id)
                control.cancel_requested = True
                if task is not None:
                    task.cancel()
                return
            if is_terminal(held.status):
                return  # it ended on its own

    async def _wait_elsewhere(self, child: Execution) -> Execution:
        """Another live process holds the child: wait for it to end (the parent is canceled
        or suspended with its own task, which ends this wait)."""
        runs = self.host.store.executions
        while True:
            current = await runs.get(child.account_id, child.id)
            if is_terminal(current.status):
                return current
            if self.control.suspend_requested:
                raise asyncio.CancelledError  # stop at the last checkpoint; resumed later
            await asyncio.sleep(POLL)

    async def _outcome(self, node_id: str, name: str, child: Execution) -> tuple[Any, str | None]:
        if child.status == "completed":
            return child.output, await self._ending_action(child)
        if child.status == "failed":
            message = (child.error or {}).get("message") or "failed"
            raise ExecutionError(
                f"node '{node_id}': sub-flow '{name}' (execution {child.id}) failed: {message}",
                node_id=node_id,
                child_execution_id=child.id,
            )
        if child.status == "canceled":
            if self.control.cancel_requested:
                raise asyncio.CancelledError  # the parent is being canceled: it ends canceled
            raise ExecutionError(
                f"node '{node_id}': sub-flow '{name}' (execution {child.id}) was canceled",
                node_id=node_id,
                child_execution_id=child.id,
            )
        # Still active: the child was suspended (shutdown). The parent stops at its last
        # checkpoint as well and finds the child again when it resumes.
        raise asyncio.CancelledError

    async def _ending_action(self, child: Execution) -> str | None:
        """The action the child's last node returned (a stored run keeps it in its events)."""
        events = await self.host.store.executions.list_events(
            child.account_id, child.id, after_seq=max(0, child.last_event_seq - 20)
        )
        for event in reversed(events):
            data = event.data
            top = not data.get("flow_path")
            if event.type == ev.NODE and data.get("state") == "finished" and top:
                action = data.get("action")
                return action if isinstance(action, str) else None
        return None
