"""The execution item: its keys, how it becomes an ``Execution``, and the shared base class of
the three modules that change it (executions, events, leases).

Items::

    ACCOUNT#<a> / EXEC#<id>            the execution   gsi1: ACCOUNT#<a>#EXECS / created+id
                                                       gsi2: ACCOUNT#<a>#FLOW#<f>#EXECS / created+id
                                                       gsi3: LEASES / lease_expires_at+id
    ACCOUNT#<a> / IDEMPOTENCY#<key>    uniqueness guard -> execution_id
    RUN#<a>#<id> / EVENT#<seq:012d>    one event
    RUN#<a>#<id> / CHECKPOINT          the latest checkpoint

``gsi3`` is the crash-recovery queue: ``gsi3pk`` is present while the execution is active
(queued/running), and ``gsi3sk`` is its lease expiry while it is leased (from creation until
its first lease, its creation time: a run whose creator died before leasing it is found
too), so the index holds the active executions ordered by when they are due for recovery.
A ``waiting`` execution with a ``wake_at`` sits in the ``WAITS`` partition of the same index
instead, sorted by ``wake_at``: the waker's queue.
"""

from __future__ import annotations

from typing import Any

from flowrunner.errors import NotFound
from flowrunner.storage.dynamodb.accounts import account_pk
from flowrunner.storage.dynamodb.client import Table
from flowrunner.storage.dynamodb.codec import SEP, load_json, opt_ts, parse_ts, ts
from flowrunner.storage.dynamodb.locks import KeyedLocks
from flowrunner.storage.records import Clock, Execution

LEASE_QUEUE = "LEASES"
WAIT_QUEUE = "WAITS"


def exec_sk(execution_id: str) -> str:
    return f"EXEC#{execution_id}"


def run_pk(account_id: str, execution_id: str) -> str:
    """The partition of one execution's events and checkpoint."""
    return f"RUN#{account_id}#{execution_id}"


def lease_key(expires_at: Any, execution_id: str) -> str:
    return f"{ts(expires_at)}{SEP}{execution_id}"


def to_execution(f: dict[str, Any]) -> Execution:
    return Execution(
        id=f["id"],
        account_id=f["account_id"],
        flow_id=f["flow_id"],
        flow_version=f["flow_version"],
        status=f["status"],
        input=load_json(f["input"]),
        created_at=parse_ts(f["created_at"]),
        output=load_json(f["output"]) if "output" in f else None,
        error=load_json(f["error"]) if "error" in f else None,
        progress=float(f.get("progress", 0.0)),
        current_node=f.get("current_node"),
        started_at=opt_ts(f.get("started_at")),
        finished_at=opt_ts(f.get("finished_at")),
        lease_owner=f.get("lease_owner"),
        lease_expires_at=opt_ts(f.get("lease_expires_at")),
        idempotency_key=f.get("idempotency_key"),
        last_event_seq=f.get("last_event_seq", 0),
        resume_attempts=int(f.get("resume_attempts", 0)),
        parent_id=f.get("parent_id"),
        usage=load_json(f["usage"]) if "usage" in f else None,
        wake_at=opt_ts(f.get("wake_at")),
        wait=load_json(f["wait"]) if "wait" in f else None,
    )


class ExecutionTable:
    def __init__(self, table: Table, clock: Clock) -> None:
        self._t = table
        self._clock = clock
        self._appending = KeyedLocks()
        self._next_hint: dict[tuple[str, str], int] = {}

    async def _load(self, account_id: str, execution_id: str) -> dict[str, Any]:
        fields = await self._t.get(account_pk(account_id), exec_sk(execution_id))
        if fields is None:
            raise NotFound("execution not found", account_id=account_id, execution_id=execution_id)
        return fields

    async def get(self, account_id: str, execution_id: str) -> Execution:
        return to_execution(await self._load(account_id, execution_id))
