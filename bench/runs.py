"""Runs through the API: a 10-node flow started with ``?wait``, every run persisted.

For each backend (SQLite in a scratch data dir; PostgreSQL in a scratch database when
``FLOWRUNNER_BENCH_POSTGRES_URL`` or ``FLOWRUNNER_TEST_POSTGRES_URL`` names a server), starts a
real ``flowrunner serve`` on loopback and drives it with 1, 8 and 32 concurrent keep-alive
clients (Bearer token). Each client posts ``/api/v1/flows/{id}/run?wait=30s`` and waits for
the finished execution (200, completed). The same server's bare ``/healthz`` is measured in
the same run at the same concurrency, interleaved with the runs over ``--rounds`` rounds so a
noisy neighbour hits both alike; the ratios say what a persisted 10-node run costs over the
HTTP round trip itself. ``cpu ms`` is the server process's CPU time per run (all its threads).
A backend named ``sqlite:2`` (or ``postgres:2``) serves with ``--workers 2``.

    .venv/bin/python bench/runs.py [--seconds 6] [--rounds 3] [--backends sqlite,sqlite:2,postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import asyncpg
from common import Call, Result, cpu_seconds, drive, free_port, server
from cryptography.fernet import Fernet

ADMIN = ("bench", "bench-password-1")
LEVELS = (1, 8, 32)
NODES = 10


def ten_node_flow() -> str:
    lines = ["metadata: {name: Ten nodes}", "nodes:"]
    for i in range(1, NODES + 1):
        nxt = f", next: {{default: n{i + 1}}}" if i < NODES else ""
        lines.append(f'  n{i}: {{type: set, params: {{values: {{v{i}: "${{input.x}}"}}}}{nxt}}}')
    return "\n".join(lines) + "\n"


@contextmanager
def serve(data_dir: Path, env_extra: dict[str, str], workers: int = 1) -> Iterator[tuple[str, int]]:
    """A ``flowrunner serve`` on loopback: its URL and process id."""
    port = free_port()
    env = {
        "FLOWRUNNER_DATA_DIR": str(data_dir),
        "FLOWRUNNER_SECRET_KEYS": Fernet.generate_key().decode(),
        "FLOWRUNNER_ADMIN_USERNAME": ADMIN[0],
        "FLOWRUNNER_ADMIN_PASSWORD": ADMIN[1],
        "FLOWRUNNER_EXECUTOR_CONCURRENCY": "64",
        **env_extra,
    }
    argv = [sys.executable, "-m", "flowrunner", "serve", "--port", str(port)]
    argv += ["--log-level", "warning", "--workers", str(workers)]
    url = f"http://127.0.0.1:{port}"
    with server(argv, env, f"{url}/healthz", log=data_dir / "server.log") as process:
        yield url, process.pid


async def bench_backend(name: str, url: str, pid: int | None, seconds: float, rounds: int) -> None:
    async with aiohttp.ClientSession(url) as setup:
        login = await setup.post("/api/v1/login", json={"username": ADMIN[0], "password": ADMIN[1]})
        login.raise_for_status()
        headers = {"Authorization": f"Bearer {(await login.json())['token']}"}
        created = await setup.post(
            "/api/v1/flows",
            data=ten_node_flow(),
            headers={**headers, "content-type": "application/yaml"},
        )
        created.raise_for_status()
        run_path = f"/api/v1/flows/{(await created.json())['id']}/run?wait=30s"

    async def run(session: aiohttp.ClientSession) -> None:
        async with session.post(run_path, json={"input": {"x": 1}}) as response:
            body = await response.json()
            if response.status != 200 or body["status"] != "completed":
                raise RuntimeError(f"run did not complete: {response.status} {body}")

    async def health(session: aiohttp.ClientSession) -> None:
        async with session.get("/healthz") as response:
            response.raise_for_status()
            await response.read()

    async def measure(clients: int, secs: float, call: Call) -> tuple[Result, float | None]:
        before = cpu_seconds(pid) if pid else None
        result = await drive(url, headers, clients, secs, call)
        after = cpu_seconds(pid) if pid else None
        cpu = None if before is None or after is None else after - before
        return result, cpu

    for clients in LEVELS:
        r, h, cpu = Result(), Result(), 0.0
        for _ in range(rounds):
            got, _ = await measure(clients, seconds / rounds / 2, health)
            h.add(got)
            got, used = await measure(clients, seconds / rounds, run)
            r.add(got)
            cpu = cpu + used if used is not None and cpu is not None else None
        cpu_ms = f"{cpu / r.count * 1000:6.2f}" if cpu is not None and r.count else "     -"
        print(
            f"{name:9} {clients:>3} | {r.rps:8.1f} {r.pct(0.5):7.2f} {r.pct(0.99):7.2f} {cpu_ms} | "
            f"{h.rps:8.1f} {h.pct(0.5):6.2f} {h.pct(0.99):6.2f} | "
            f"{r.pct(0.5) / h.pct(0.5):5.1f}x {h.rps / r.rps:5.1f}x",
            flush=True,
        )


@contextmanager
def postgres_database(server_url: str) -> Iterator[str]:
    name = f"flowrunner_bench_{os.getpid()}"
    base = server_url.rsplit("/", 1)[0]

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(server_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="measured run time a level")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds a level")
    parser.add_argument("--backends", default="sqlite,sqlite:2,postgres")
    args = parser.parse_args()
    pg = os.environ.get("FLOWRUNNER_BENCH_POSTGRES_URL") or os.environ.get(
        "FLOWRUNNER_TEST_POSTGRES_URL"
    )
    print(
        f"{NODES}-node flow via POST /run?wait, every run persisted; "
        f"{args.seconds:g}s a level in {args.rounds} rounds"
    )
    print(
        "backend  clients |   runs/s  p50 ms  p99 ms cpu ms | health/s p50 ms p99 ms "
        "| p50 ratio, rps ratio"
    )
    for name in args.backends.split(","):
        backend, _, count = name.partition(":")
        workers = int(count or 1)
        label = backend if workers == 1 else f"{backend}x{workers}"
        with tempfile.TemporaryDirectory() as tmp:
            if backend == "sqlite":
                with serve(Path(tmp), {"FLOWRUNNER_STORAGE": "sqlite"}, workers) as (url, pid):
                    # Worker processes are the server's children: their CPU is not counted.
                    owner = pid if workers == 1 else None
                    asyncio.run(bench_backend(label, url, owner, args.seconds, args.rounds))
            elif backend == "postgres":
                if not pg:
                    print("postgres  skipped: set FLOWRUNNER_BENCH_POSTGRES_URL")
                    continue
                with (
                    postgres_database(pg) as db,
                    serve(
                        Path(tmp),
                        {"FLOWRUNNER_STORAGE": "postgres", "FLOWRUNNER_DATABASE_URL": db},
                        workers,
                    ) as (url, pid),
                ):
                    owner = pid if workers == 1 else None
                    asyncio.run(bench_backend(label, url, owner, args.seconds, args.rounds))


if __name__ == "__main__":
    main()
