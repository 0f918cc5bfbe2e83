"""Execution events (gap-free sequence numbers) and checkpoints.

Events are stored as *batches*: one item per ``append_events`` call, keyed by the sequence
number of its first event and holding up to 99 events. Batches tile the sequence: an append
reads the last batch (strongly consistent), and puts the next one at ``last + 1`` on condition
that key does not exist yet. Two writers that read the same last batch target the same key, so
exactly one wins; the loser re-reads and tries again. Because a batch is one item, a crash
writes all of it or nothing, so readers tailing with ``after_seq`` never see a gap, a hole that
fills in later, or a duplicate number. No transaction is needed (half the write cost of one).

The execution item's ``last_event_seq`` follows with a conditional "raise to" update after
each append; it is what ``get`` reports and may lag by one append if a writer dies in between
(the next append raises it again). The batch items are the source of truth.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import random
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from flowrunner.errors import Conflict, NotFound
from flowrunner.storage.dynamodb.accounts import EXISTS, NEW, account_pk
from flowrunner.storage.dynamodb.client import ConditionFailed, Table, TransactionCanceled
from flowrunner.storage.dynamodb.codec import dump_json, from_item, load_json, parse_ts, seq_key, ts
from flowrunner.storage.dynamodb.execution_items import ExecutionTable, exec_sk, run_pk
from flowrunner.storage.dynamodb.expr import Expr
from flowrunner.storage.dynamodb.outbox import delivery_item
from flowrunner.storage.dynamodb.run_deliveries import link_item
from flowrunner.storage.pagination import clamp_limit
from flowrunner.storage.protocols import MAX_LIMIT
from flowrunner.storage.records import (
    Checkpoint,
    ExecutionEvent,
    JSONValue,
    NewCheckpoint,
    NewDelivery,
    NewEvent,
    pending_delivery,
)

BATCH_MAX = 99
BATCH_MAX_BYTES = 350_000
"""Keeps a batch item under DynamoDB's 400 KB item limit (with room for keys and names)."""
APPEND_ATTEMPTS = 200
HINTS_KEPT = 1024
LAST_SEQ = 10**12 - 1
OLD_RESUME_KEY = "$resume"


Entry = tuple[str, str, str | None]
"""An event as a batch holds it: type, data JSON, and when it happened if the writer said."""


def batches_of(events: Sequence[NewEvent]) -> list[list[Entry]]:
    """Events cut into batches of at most 99 events and ~350 KB."""
    out: list[list[Entry]] = [[]]
    size = 0
    for ev in events:
        pair = (ev.type, dump_json(dict(ev.data)), None if ev.time is None else ts(ev.time))
        cost = len(pair[0]) + len(pair[1].encode()) + 48
        if out[-1] and (len(out[-1]) == BATCH_MAX or size + cost > BATCH_MAX_BYTES):
            out.append([])
            size = 0
        out[-1].append(pair)
        size += cost
    return out


TX_OUTBOX = 90
"""Outbox entries written in a step's transaction (with the batch, the checkpoint, the
progress check and the entries' link to the run, under DynamoDB's 100 items)."""


class EventLog(ExecutionTable):
    async def append_events(
        self, account_id: str, execution_id: str, events: Sequence[NewEvent]
    ) -> builtins.list[ExecutionEvent]:
        """Atomic for up to 99 events (and ~350 KB); a larger call is written as several
        batches, each atomic and gap-free, consecutive unless another process appends to the
        same execution at the same moment."""
        return await self._append_all(account_id, execution_id, events, None)

    async def _append_all(
        self,
        account_id: str,
        execution_id: str,
        events: Sequence[NewEvent],
        position: dict[str, Any] | None,
    ) -> builtins.list[ExecutionEvent]:
        if not events:
            if position:
                expr = Expr().set_fields(position)
                try:
                    await self._t.update(
                        account_pk(account_id), exec_sk(execution_id), expr, condition=EXISTS
                    )
                except ConditionFailed:
                    await self._load(account_id, execution_id)  # NotFound
                    raise
            else:
                await self._load(account_id, execution_id)
            return []
        written: list[ExecutionEvent] = []
        async with self._appending.hold((account_id, execution_id)):
            for batch in batches_of(events):
                written += await self._append(account_id, execution_id, batch)
        await self._raise_counter(account_id, execution_id, written[-1].seq, position)
        return written

    async def _append(
        self,
        account_id: str,
        execution_id: str,
        batch: list[Entry],
        checkpoint: NewCheckpoint | None = None,
        outbox: Sequence[NewDelivery] = (),
    ) -> builtins.list[ExecutionEvent]:
        """Put ``batch`` at the next free number (with ``checkpoint``, in one transaction,
        when given), re-reading the last batch after each lost race."""
        hint = self._next_hint.pop((account_id, execution_id), None)
        for attempt in range(APPEND_ATTEMPTS):
            first = hint or await self._next_seq(account_id, execution_id)
            hint = None
            now = self._clock()
            item = batch_item(account_id, execution_id, first, batch, now)
            if await self._put_batch(item, checkpoint, now, outbox):
                self._remember(account_id, execution_id, first + len(batch))
                return _expand(item)
            # Another process took this number first: back off a little and re-read.
            await asyncio.sleep(random.uniform(0, min(0.05, 0.001 * 2 ** min(attempt, 6))))
        raise Conflict("too many concurrent event writers; retry", execution_id=execution_id)

    async def _put_batch(
        self,
        item: dict[str, Any],
        checkpoint: NewCheckpoint | None,
        now: datetime,
        outbox: Sequence[NewDelivery] = (),
    ) -> bool:
        """False when another writer holds the batch's number already."""
        account_id, execution_id = item["account_id"], item["execution_id"]
        if checkpoint is None and not outbox:
            try:
                await self._t.put(item, condition=NEW)
            except ConditionFailed:
                return False
            return True
        actions = [self._t.tx_put(item, condition=NEW)]
        if checkpoint is not None:
            saved = _checkpoint_item(
                account_id, execution_id, dump_json(checkpoint.shared), checkpoint.next_node,
                dump_json(dict(checkpoint.results)), dump_json(dict(checkpoint.resume)), now,
            )  # fmt: skip
            progress = _progress(account_pk(account_id), exec_sk(execution_id), self._t)
            actions = [progress, *actions, self._t.tx_put(saved)]
        written = [
            pending_delivery(account_id, entry, now, execution_id=execution_id) for entry in outbox
        ]
        for delivery in written:
            actions.append(self._t.tx_put(delivery_item(delivery), condition=NEW))
        if written:
            link = link_item(account_id, execution_id, [d.id for d in written])
            actions.append(self._t.tx_put(link))
        try:
            await self._t.transact(actions)
        except TransactionCanceled as exc:
            if checkpoint is not None and exc.failed(0):
                raise NotFound(
                    "execution not found", account_id=account_id, execution_id=execution_id
                ) from exc
            return False
        return True

    def _remember(self, account_id: str, execution_id: str, next_seq: int) -> None:
        """Where this process expects the next batch to go: saves the read of the last batch
        when one process appends in a row. A stale hint only costs a failed put and a re-read."""
        if len(self._next_hint) >= HINTS_KEPT:
            self._next_hint.pop(next(iter(self._next_hint)))
        self._next_hint[(account_id, execution_id)] = next_seq

    async def _next_seq(self, account_id: str, execution_id: str) -> int:
        response = await self._t.query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :p)",
            ExpressionAttributeValues={
                ":pk": {"S": run_pk(account_id, execution_id)},
                ":p": {"S": "EVENT#"},
            },
            ScanIndexForward=False,
            ConsistentRead=True,
            Limit=1,
        )
        items = response.get("Items", [])
        if not items:
            await self._load(account_id, execution_id)  # NotFound for a missing execution
            return 1
        last = from_item(items[0])
        return int(last["first"]) + int(last["count"])

    async def _raise_counter(
        self,
        account_id: str,
        execution_id: str,
        seq: int,
        position: dict[str, Any] | None = None,
    ) -> None:
        """Raise ``last_event_seq`` to ``seq``, and set the run's position if given."""
        key = account_pk(account_id), exec_sk(execution_id)
        expr = Expr().set("last_event_seq", seq).set_fields(position or {})
        try:
            await self._t.update(
                *key, expr, condition=f"{EXISTS} AND {expr.n('last_event_seq')} < {expr.v(seq)}"
            )
        except ConditionFailed:
            # A concurrent writer already raised the counter further; the position still
            # goes in.
            if position:
                with contextlib.suppress(ConditionFailed):
                    await self._t.update(*key, Expr().set_fields(position), condition=EXISTS)

    async def list_events(
        self,
        account_id: str,
        execution_id: str,
        *,
        after_seq: int = 0,
        limit: int = MAX_LIMIT,
    ) -> builtins.list[ExecutionEvent]:
        await self._load(account_id, execution_id)
        limit, after = clamp_limit(limit), max(after_seq, 0)
        # The batch holding event after+1 starts at most BATCH_MAX - 1 numbers before it.
        request: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :lo AND :hi",
            "ExpressionAttributeValues": {
                ":pk": {"S": run_pk(account_id, execution_id)},
                ":lo": {"S": seq_key("EVENT#", max(after + 1 - (BATCH_MAX - 1), 1))},
                ":hi": {"S": seq_key("EVENT#", LAST_SEQ)},
            },
            "ConsistentRead": True,
        }
        found: list[ExecutionEvent] = []
        while len(found) < limit:
            response = await self._t.query(**request)
            for raw in response.get("Items", []):
                found += [e for e in _expand(from_item(raw)) if e.seq > after]
            if "LastEvaluatedKey" not in response:
                break
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return found[:limit]

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
        now = self._clock()
        shared_json, results_json = dump_json(shared), dump_json(dict(results))
        resume_json = dump_json(dict(resume or {}))
        item = _checkpoint_item(
            account_id, execution_id, shared_json, next_node, results_json, resume_json, now
        )
        actions = [
            _progress(account_pk(account_id), exec_sk(execution_id), self._t),
            self._t.tx_put(item),
        ]
        try:
            await self._t.transact(actions)
        except TransactionCanceled as exc:
            raise NotFound(
                "execution not found", account_id=account_id, execution_id=execution_id
            ) from exc
        return Checkpoint(
            execution_id, account_id, load_json(shared_json), next_node,
            load_json(results_json), now, load_json(resume_json),
        )  # fmt: skip

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
        """One transaction: the next event batch (on condition its number is free), the
        checkpoint, a check that the execution exists, and the outbox entries. Atomic for a
        batch that fits one item (99 events, ~350 KB), as ``append_events`` is; a bigger step
        appends first. Outbox entries past ``TX_OUTBOX`` are put just after the transaction
        (a transaction holds at most 100 items). Where the run is goes on the execution item
        with the event counter."""
        given = {
            "progress": None if progress is None else float(progress),
            "current_node": current_node,
        }
        position = {name: value for name, value in given.items() if value is not None}
        if outbox and events:
            slices = batches_of(events)
            async with self._appending.hold((account_id, execution_id)):
                written: list[ExecutionEvent] = []
                for batch in slices[:-1]:
                    written += await self._append(account_id, execution_id, batch)
                written += await self._append(
                    account_id, execution_id, slices[-1], checkpoint, outbox[:TX_OUTBOX]
                )
            await self._raise_counter(account_id, execution_id, written[-1].seq, position)
            rest = [
                pending_delivery(account_id, entry, self._clock(), execution_id=execution_id)
                for entry in outbox[TX_OUTBOX:]
            ]
            if rest:  # the link first: one to a delivery never written is harmless
                await self._t.put(link_item(account_id, execution_id, [d.id for d in rest]))
            for delivery in rest:
                await self._t.put(delivery_item(delivery), condition=NEW)
            return written
        if checkpoint is None:
            return await self._append_all(account_id, execution_id, events, position)
        slices = batches_of(events) if events else [[]]
        if not events or len(slices) > 1:
            written = await self._append_all(account_id, execution_id, events, position)
            await self.save_checkpoint(
                account_id, execution_id, shared=checkpoint.shared,
                next_node=checkpoint.next_node, results=checkpoint.results,
                resume=checkpoint.resume,
            )  # fmt: skip
            return written
        async with self._appending.hold((account_id, execution_id)):
            written = await self._append(account_id, execution_id, slices[0], checkpoint)
        await self._raise_counter(account_id, execution_id, written[-1].seq, position)
        return written

    async def get_checkpoint(self, account_id: str, execution_id: str) -> Checkpoint | None:
        await self._load(account_id, execution_id)
        f = await self._t.get(run_pk(account_id, execution_id), "CHECKPOINT")
        if f is None:
            return None
        results = load_json(f["results"])
        if "resume" in f:
            resume = load_json(f["resume"])
        else:  # an item from before checkpoints had ``resume``: it rode in results
            resume = results.pop(OLD_RESUME_KEY, None) or {}
        return Checkpoint(
            f["execution_id"], f["account_id"], load_json(f["shared"]), f.get("next_node"),
            results, parse_ts(f["updated_at"]), resume,
        )  # fmt: skip


def _checkpoint_item(
    account_id: str,
    execution_id: str,
    shared_json: str,
    next_node: str | None,
    results_json: str,
    resume_json: str,
    now: datetime,
) -> dict[str, Any]:
    return {
        "pk": run_pk(account_id, execution_id), "sk": "CHECKPOINT",
        "execution_id": execution_id, "account_id": account_id, "shared": shared_json,
        "next_node": next_node, "results": results_json, "resume": resume_json,
        "updated_at": ts(now),
    }  # fmt: skip


def _progress(pk: str, sk: str, table: Table) -> dict[str, Any]:
    """The transaction's check that the execution exists, which also records progress: a
    saved checkpoint resets the poison-run guard's count."""
    return table.tx_update(pk, sk, Expr().set("resume_attempts", 0), EXISTS)


def batch_item(
    account_id: str, execution_id: str, first: int, batch: list[Entry], now: datetime
) -> dict[str, Any]:
    """The item of one batch of events, numbered from ``first``."""
    return {
        "pk": run_pk(account_id, execution_id), "sk": seq_key("EVENT#", first),
        "execution_id": execution_id, "account_id": account_id, "first": first,
        "count": len(batch), "events": _batch_json(batch), "created_at": ts(now),
    }  # fmt: skip


def _batch_json(batch: list[Entry]) -> str:
    # [type, data] or, when the writer said when it happened, [type, data, time].
    entries = [[t, load_json(d)] if at is None else [t, load_json(d), at] for t, d, at in batch]
    return dump_json(entries)


def _expand(batch: dict[str, Any]) -> list[ExecutionEvent]:
    created = parse_ts(batch["created_at"])
    account, execution = batch["account_id"], batch["execution_id"]
    return [
        ExecutionEvent(execution, account, seq, e[0], e[1], parse_ts(e[2]) if e[2:] else created)
        for seq, e in enumerate(load_json(batch["events"]), start=int(batch["first"]))
    ]
