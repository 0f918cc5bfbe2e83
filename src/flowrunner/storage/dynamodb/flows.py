"""Flows and their immutable versions.

Items::

    ACCOUNT#<a> / FLOW#<id>                 the flow      gsi1: ACCOUNT#<a>#FLOWS / created+id
    ACCOUNT#<a> / FLOWVER#<flow>#<n:012d>   a version (its YAML, up to the 400 KB item limit)

A new version and the flow's ``current_version`` change in one ``TransactWriteItems``: the
flow update is conditioned on the version number read just before, and the version put on
``attribute_not_exists``, so two editors can never both write version N. A change's webhook
events (``flow.created`` / ``updated`` / ``deleted``) are delivery items put in the same
transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from flowrunner.errors import Conflict, NotFound
from flowrunner.storage.dynamodb.accounts import EXISTS, NEW, account_pk
from flowrunner.storage.dynamodb.client import ConditionFailed, Table, TransactionCanceled
from flowrunner.storage.dynamodb.codec import opt_ts, parse_ts, seq_key, time_key, ts
from flowrunner.storage.dynamodb.expr import Expr
from flowrunner.storage.dynamodb.outbox import outbox_puts
from flowrunner.storage.dynamodb.paging import SortRange, query_page
from flowrunner.storage.protocols import DEFAULT_LIMIT
from flowrunner.storage.records import Clock, Flow, FlowVersion, NewDelivery, Page, new_id

ADD_VERSION_ATTEMPTS = 50


def _flow(f: dict[str, Any]) -> Flow:
    return Flow(
        f["id"], f["account_id"], f["name"], f["description"], tuple(f["tags"]),
        f["current_version"], parse_ts(f["created_at"]), parse_ts(f["updated_at"]),
        opt_ts(f.get("deleted_at")),
    )  # fmt: skip


def _version(f: dict[str, Any]) -> FlowVersion:
    return FlowVersion(
        f["flow_id"], f["account_id"], f["number"], f["yaml"], f["checksum"], f.get("author"),
        parse_ts(f["created_at"]), f.get("message"),
    )  # fmt: skip


def time_range(after: datetime | None, before: datetime | None) -> SortRange:
    """``after <= created_at < before`` on a ``created+id`` sort key: a key created exactly at
    ``before`` is ``ts(before) + SEP + id``, which sorts above the bound ``ts(before)``."""
    return SortRange(lo=ts(after) if after else None, hi=ts(before) if before else None)


class DynamoFlows:
    def __init__(self, table: Table, clock: Clock) -> None:
        self._t = table
        self._clock = clock

    async def create(
        self,
        account_id: str,
        *,
        name: str,
        description: str = "",
        tags: Sequence[str] = (),
    ) -> Flow:
        now = self._clock()
        flow = Flow(new_id(), account_id, name, description, tuple(tags), 0, now, now)
        await self._t.put(
            {
                "pk": account_pk(account_id), "sk": f"FLOW#{flow.id}",
                "gsi1pk": f"ACCOUNT#{account_id}#FLOWS", "gsi1sk": time_key(now, flow.id),
                "id": flow.id, "account_id": account_id, "name": name,
                "description": description, "tags": list(tags), "current_version": 0,
                "created_at": ts(now), "updated_at": ts(now),
            },
            condition=NEW,
        )  # fmt: skip
        return flow

    async def get(self, account_id: str, flow_id: str, *, include_deleted: bool = False) -> Flow:
        fields = await self._t.get(account_pk(account_id), f"FLOW#{flow_id}")
        if fields is None or ("deleted_at" in fields and not include_deleted):
            raise NotFound("flow not found", account_id=account_id, flow_id=flow_id)
        return _flow(fields)

    async def list(
        self,
        account_id: str,
        *,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
        name_contains: str | None = None,
        tags: Collection[str] = (),
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        include_deleted: bool = False,
    ) -> Page[Flow]:
        needle, wanted = (name_contains or "").lower(), set(tags)

        def keep(f: Flow) -> bool:
            return (
                (include_deleted or f.deleted_at is None)
                and needle in f.name.lower()
                and wanted <= set(f.tags)
            )

        return await query_page(
            self._t, index="gsi1", partition=f"ACCOUNT#{account_id}#FLOWS", build=_flow,
            limit=limit, cursor=cursor, sort=time_range(created_after, created_before),
            keep=None if include_deleted and not needle and not wanted else keep,
        )  # fmt: skip

    async def update(
        self,
        account_id: str,
        flow_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        tags: Sequence[str] | None = None,
        outbox: Sequence[NewDelivery] = (),
    ) -> Flow:
        expr = Expr().set_fields(
            {"name": name, "description": description, "tags": None if tags is None else list(tags)}
        )
        expr.set("updated_at", ts(self._clock()))
        return await self._change(account_id, flow_id, expr, outbox)

    async def delete(
        self, account_id: str, flow_id: str, *, outbox: Sequence[NewDelivery] = ()
    ) -> None:
        now = ts(self._clock())
        await self._change(
            account_id, flow_id, Expr().set("deleted_at", now).set("updated_at", now), outbox
        )

    async def _change(
        self, account_id: str, flow_id: str, expr: Expr, outbox: Sequence[NewDelivery]
    ) -> Flow:
        condition = f"{EXISTS} AND {expr.missing('deleted_at')}"
        pk, sk = account_pk(account_id), f"FLOW#{flow_id}"
        puts = await outbox_puts(self._t, account_id, outbox, self._clock()) if outbox else []
        try:
            if not puts:
                return _flow(await self._t.update(pk, sk, expr, condition=condition))
            await self._t.transact([self._t.tx_update(pk, sk, expr, condition), *puts])
        except (ConditionFailed, TransactionCanceled):
            raise NotFound("flow not found", account_id=account_id, flow_id=flow_id) from None
        # A transaction returns no item: read the flow back (deleted or not, it is there).
        return await self.get(account_id, flow_id, include_deleted=True)

    async def add_version(
        self,
        account_id: str,
        flow_id: str,
        *,
        yaml: str,
        author: str | None = None,
        expected_current: int | None = None,
        message: str | None = None,
        outbox: Sequence[NewDelivery] = (),
    ) -> FlowVersion:
        checksum = hashlib.sha256(yaml.encode()).hexdigest()
        for _ in range(ADD_VERSION_ATTEMPTS):
            flow = await self.get(account_id, flow_id)
            if expected_current is not None and flow.current_version != expected_current:
                raise Conflict(
                    f"flow is at version {flow.current_version}, not {expected_current}",
                    flow_id=flow_id,
                    current_version=flow.current_version,
                )
            now = self._clock()
            number = flow.current_version + 1
            version = FlowVersion(flow_id, account_id, number, yaml, checksum, author, now, message)
            bump = Expr().set("current_version", number).set("updated_at", ts(now))
            unchanged = f"{bump.eq('current_version', flow.current_version)} AND " + bump.missing(
                "deleted_at"
            )
            item = {
                "pk": account_pk(account_id), "sk": seq_key(f"FLOWVER#{flow_id}#", number),
                "flow_id": flow_id, "account_id": account_id, "number": number, "yaml": yaml,
                "checksum": checksum, "author": author, "created_at": ts(now), "message": message,
            }  # fmt: skip
            try:
                await self._t.transact(
                    [
                        self._t.tx_update(
                            account_pk(account_id), f"FLOW#{flow_id}", bump, unchanged
                        ),
                        self._t.tx_put(item, NEW),
                        *await outbox_puts(self._t, account_id, outbox, now),
                    ]
                )
            except TransactionCanceled:
                # Another writer got there first (or the flow was deleted): read again.
                continue
            return version
        raise Conflict("flow is being changed by too many writers; retry", flow_id=flow_id)

    async def get_version(self, account_id: str, flow_id: str, number: int) -> FlowVersion:
        fields = await self._t.get(account_pk(account_id), seq_key(f"FLOWVER#{flow_id}#", number))
        if fields is None:
            raise NotFound(
                "flow version not found", account_id=account_id, flow_id=flow_id, number=number
            )
        return _version(fields)

    async def list_versions(
        self,
        account_id: str,
        flow_id: str,
        *,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Page[FlowVersion]:
        await self.get(account_id, flow_id, include_deleted=True)
        return await query_page(
            self._t, partition=account_pk(account_id), build=_version, limit=limit,
            cursor=cursor, sort=SortRange(prefix=f"FLOWVER#{flow_id}#"),
        )  # fmt: skip
