"""On-failure flows: when a run ends ``failed``, start the flow its definition names in
``metadata.on_failure`` (else the account's default) with the failure's details as input —
like n8n's error workflow.

The run it starts is a **child** of the failed run (``parent_id``), with the idempotency key
``on-failure:<failed run id>``: one per failed run, whichever process records the failure or
tries again. Unlike a sub-flow's child it runs on its own, through the executor (an executor
slot, the account's fair share), and crash recovery resumes it like a top-level run
(``Execution.detached``). Only top-level runs start one: a failing sub-flow is its parent's
business, and a failing on-failure run (a child) starts nothing — never recursive.

The account's default is kept in the system partition of the key-value store (namespace
``account-settings``), out of reach of the account's own ``store`` nodes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog

from flowrunner.errors import Conflict, ExecutionError, InvalidInput, NotFound
from flowrunner.executions import events as ev
from flowrunner.flows.references import find_flow
from flowrunner.storage import Execution, NewEvent, Store
from flowrunner.storage.records import DETACHED_KEY_PREFIX, JSONValue, utcnow

log = structlog.get_logger("flowrunner.executions")

SYSTEM = "_system"
NAMESPACE = "account-settings"

Submit = Callable[[Execution], Awaitable[bool]]


class FailureFlows:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._submit: Submit | None = None

    def bind(self, submit: Submit) -> None:
        """The executor's ``submit`` (the executor is built after the runner that calls us)."""
        self._submit = submit

    # --- the account's default -------------------------------------------------------------

    async def default(self, account_id: str) -> str | None:
        """The account-wide on-failure flow (name or id), or None."""
        try:
            entry = await self._store.kv.get(SYSTEM, NAMESPACE, account_id)
        except NotFound:
            return None
        value = entry.value
        flow = value.get("on_failure_flow") if isinstance(value, Mapping) else None
        return flow if isinstance(flow, str) else None

    async def set_default(self, account_id: str, flow: str | None) -> str | None:
        """Set (or with None clear) the account's default; the flow must exist now (it is
        looked up again, by the same name or id, at each failure)."""
        if flow is None:
            with contextlib.suppress(NotFound):
                await self._store.kv.delete(SYSTEM, NAMESPACE, account_id)
            return None
        await find_flow(self._store.flows, account_id, flow)  # NotFound / InvalidInput
        await self._store.kv.put(SYSTEM, NAMESPACE, account_id, {"on_failure_flow": flow})
        return flow

    # --- a failure -------------------------------------------------------------------------

    async def failed(
        self, execution: Execution, declared: str | None, flow_name: str | None
    ) -> Execution | None:
        """Start the on-failure run of the failed ``execution`` (``declared``: its flow's
        ``metadata.on_failure.flow``); None when there is none to start. Problems finding the
        flow are written to the failed run's log, never raised: the failure stands as is."""
        if execution.parent_id is not None:
            return None  # a sub-flow's child, or an on-failure run: never recursive
        account_id = execution.account_id
        ref = declared or await self.default(account_id)
        if ref is None:
            return None
        try:
            target = await find_flow(self._store.flows, account_id, ref)
            if target.current_version < 1:
                raise InvalidInput(f"flow '{ref}' has no version to run yet")
        except (NotFound, InvalidInput) as exc:
            await self._note(execution, f"on-failure flow not started: {exc.message}")
            return None
        run_input = failure_input(execution, flow_name)
        key = f"{DETACHED_KEY_PREFIX}{execution.id}"
        runs = self._store.executions
        try:
            child = await runs.create(
                account_id,
                flow_id=target.id,
                flow_version=target.current_version,
                input=run_input,
                idempotency_key=key,
                parent_id=execution.id,
            )
        except Conflict:
            return await runs.get_by_idempotency_key(account_id, key)  # started already
        log.info("on-failure run started", child_execution_id=child.id, on_failure=target.name)
        await self._note(
            execution,
            f"on-failure flow '{target.name}' started: execution {child.id}",
            level="info",
            child_execution_id=child.id,
        )
        if self._submit is not None:
            try:
                await self._submit(child)
            except ExecutionError:
                # The executor is closing: crash recovery starts it, like any queued run
                # nobody holds.
                log.info("on-failure run left for recovery", child_execution_id=child.id)
        return child

    async def _note(
        self, execution: Execution, message: str, *, level: str = "warning", **data: JSONValue
    ) -> None:
        event = NewEvent(
            ev.LOG, {"node_id": None, "level": level, "message": message, **data}, utcnow()
        )
        await self._store.executions.append_events(execution.account_id, execution.id, [event])


def failure_input(execution: Execution, flow_name: str | None) -> dict[str, Any]:
    """``{execution, flow, error, node_id, input}``: what the on-failure flow runs with. The
    error and the input are the failed run's stored ones (secrets already masked)."""
    error = dict(execution.error or {})
    node_id = error.get("node_id")
    return {
        "execution": {
            "id": execution.id,
            "status": execution.status,
            "flow_version": execution.flow_version,
            "started_at": execution.started_at.isoformat() if execution.started_at else None,
            "finished_at": execution.finished_at.isoformat() if execution.finished_at else None,
        },
        "flow": {"id": execution.flow_id, "name": flow_name, "version": execution.flow_version},
        "error": error,
        "node_id": node_id if isinstance(node_id, str) else None,
        "input": execution.input,
    }
