"""Storage throughput and latency on SQLite and PostgreSQL, through the public store API.

For each backend, in a scratch database created and dropped by this script:

- execution-event inserts per second, one event per call and in batches of 100;
- p50/p99 of "list executions, page 1" (50 rows, newest first) and of page 2 (with a cursor)
  and of a status-filtered page, with ``--rows`` executions (default 1,000,000) in one account,
  bulk-loaded with COPY (PostgreSQL) or one executemany transaction (SQLite);
- p50/p99 of fetching one flow version.

    .venv/bin/python bench/storage.py [--rows N] [--backends sqlite,postgres] [--pg-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from flowrunner.storage import NewEvent
from flowrunner.storage.sql import SqlStore

STATUSES = ("completed", "completed", "completed", "failed", "running", "queued", "canceled")
START = datetime(2025, 1, 1, tzinfo=UTC)


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p99 in milliseconds."""
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p99 * 1000


async def timed(fn: Callable[[], Awaitable[Any]], repeats: int) -> tuple[float, float]:
    for _ in range(5):  # warm the pool, the statement cache and the page cache
        await fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        await fn()
        samples.append(time.perf_counter() - t0)
    return percentiles(samples)


def execution_rows(account_id: str, rows: int) -> list[tuple[Any, ...]]:
    """Rows for the executions table, one per second of history, time-ordered ids."""
    out = []
    for i in range(rows):
        created = START + timedelta(seconds=i)
        ident = f"{int(created.timestamp() * 1000):012x}{i:020x}"
        out.append((ident, account_id, "flow", 1, STATUSES[i % len(STATUSES)], created, i))
    return out


async def bulk_load_postgres(url: str, account_id: str, rows: int) -> None:
    dsn = make_url(url).set(drivername="postgresql").render_as_string(False)
    conn = await asyncpg.connect(dsn)
    try:
        records = [
            (i, a, f, v, s, json.dumps({"n": n}), 0.0, c, 0)
            for (i, a, f, v, s, c, n) in execution_rows(account_id, rows)
        ]
        await conn.copy_records_to_table(
            "executions",
            records=records,
            columns=[
                "id", "account_id", "flow_id", "flow_version", "status", "input", "progress",
                "created_at", "last_event_seq",
            ],
        )  # fmt: skip
        await conn.execute("ANALYZE executions")
    finally:
        await conn.close()


def bulk_load_sqlite(path: str, account_id: str, rows: int) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.executemany(
            "INSERT INTO executions (id, account_id, flow_id, flow_version, status, input,"
            " progress, created_at, last_event_seq) VALUES (?, ?, ?, ?, ?, ?, 0.0, ?, 0)",
            (
                # SQLite keeps UTC timestamps as naive text, as the store's UTCDateTime does.
                (i, a, f, v, s, json.dumps({"n": n}), c.replace(tzinfo=None).isoformat(" "))
                for (i, a, f, v, s, c, n) in execution_rows(account_id, rows)
            ),
        )
        conn.commit()
        conn.execute("ANALYZE")
    finally:
        conn.close()


async def bench_backend(name: str, url: str, rows: int, out: dict[str, Any]) -> None:
    store = SqlStore(url)
    await store.connect()
    try:
        account = await store.accounts.create("bench", "x")
        run = await store.executions.create(account.id, flow_id="f", flow_version=1)

        n_single = 2000
        t0 = time.perf_counter()
        for i in range(n_single):
            await store.executions.append_events(account.id, run.id, [NewEvent("tick", {"i": i})])
        out["events_single_per_s"] = n_single / (time.perf_counter() - t0)

        batch, n_batches = 100, 200
        t0 = time.perf_counter()
        for b in range(n_batches):
            events = [NewEvent("tick", {"b": b, "i": i}) for i in range(batch)]
            await store.executions.append_events(account.id, run.id, events)
        out["events_batched_per_s"] = batch * n_batches / (time.perf_counter() - t0)

        t0 = time.perf_counter()
        if name == "postgres":
            await bulk_load_postgres(url, account.id, rows)
        else:
            bulk_load_sqlite(str(make_url(url).database), account.id, rows)
        out["bulk_load_s"] = time.perf_counter() - t0

        first = await store.executions.list(account.id, limit=50)
        out["page1_ms"] = await timed(lambda: store.executions.list(account.id, limit=50), 300)
        cursor = first.next_cursor
        out["page2_ms"] = await timed(
            lambda: store.executions.list(account.id, limit=50, cursor=cursor), 300
        )
        out["page_failed_ms"] = await timed(
            lambda: store.executions.list(account.id, limit=50, status=["failed"]), 300
        )

        flow = await store.flows.create(account.id, name="bench")
        for i in range(20):
            await store.flows.add_version(account.id, flow.id, yaml=f"nodes: {{n{i}: {{}}}}\n")
        out["version_fetch_ms"] = await timed(
            lambda: store.flows.get_version(account.id, flow.id, 7), 500
        )
    finally:
        await store.close()


async def with_postgres_database(server: str, body: Callable[[str], Awaitable[None]]) -> None:
    name = f"flowrunner_bench_{os.getpid()}"
    admin = await asyncpg.connect(
        make_url(server).set(drivername="postgresql").render_as_string(False)
    )
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            await body(make_url(server).set(database=name).render_as_string(False))
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def report(name: str, r: dict[str, Any], rows: int) -> None:
    print(f"\n{name} ({rows:,} executions in one account)")
    print(f"  events, single insert    {r['events_single_per_s']:10,.0f} /s")
    print(f"  events, batches of 100   {r['events_batched_per_s']:10,.0f} /s")
    print(f"  bulk load                {r['bulk_load_s']:10.1f} s")
    for key, label in [
        ("page1_ms", "list executions page 1"),
        ("page2_ms", "list executions page 2"),
        ("page_failed_ms", "list status=failed"),
        ("version_fetch_ms", "flow version fetch"),
    ]:
        p50, p99 = r[key]
        print(f"  {label:<24} p50 {p50:7.2f} ms   p99 {p99:7.2f} ms")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "FLOWRUNNER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    for name in args.backends.split(","):
        results: dict[str, Any] = {}
        if name == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                url = f"sqlite:///{Path(tmp) / 'bench.db'}"
                await bench_backend("sqlite", url, args.rows, results)
        elif name == "postgres":

            async def run(url: str, results: dict[str, Any] = results) -> None:
                await bench_backend("postgres", url, args.rows, results)

            await with_postgres_database(args.pg_url, run)
        else:
            raise SystemExit(f"unknown backend {name!r}")
        report(name, results, args.rows)


if __name__ == "__main__":
    asyncio.run(main())
