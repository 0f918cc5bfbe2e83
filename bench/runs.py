"""Runs through the API: a 10-node flow started with ``?wait``, every run persisted.

For each backend (SQLite in a scratch data dir; PostgreSQL in a scratch database when
``FLOWRUNNER_BENCH_POSTGRES_URL`` or ``FLOWRUNNER_TEST_POSTGRES_URL`` names a server), starts a
real ``flowrunner serve`` on loopback and drives it with 1, 8 and 32 concurrent httpx clients
(Bearer token, keep-alive) for ``--seconds`` each after a warm-up. Each client posts
``/api/v1/flows/{id}/run?wait=30s`` and waits for the finished execution (200, completed).
The same server's bare ``/healthz`` is measured in the same run at the same concurrency, and
the ratio of run latency to it is printed: how much a persisted 10-node run costs over the
HTTP round trip itself. A backend named ``sqlite:2`` (or ``postgres:2``) serves with
``--workers 2``.

    .venv/bin/python bench/runs.py [--seconds 5] [--backends sqlite,sqlite:2,postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
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


@dataclass
class Result:
    count: int
    seconds: float
    latencies: list[float]

    @property
    def rps(self) -> float:
        return self.count / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serve(data_dir: Path, env_extra: dict[str, str], workers: int = 1) -> Iterator[str]:
    port = _free_port()
    env = {
        **os.environ,
        "FLOWRUNNER_DATA_DIR": str(data_dir),
        "FLOWRUNNER_SECRET_KEYS": Fernet.generate_key().decode(),
        "FLOWRUNNER_ADMIN_USERNAME": ADMIN[0],
        "FLOWRUNNER_ADMIN_PASSWORD": ADMIN[1],
        "FLOWRUNNER_EXECUTOR_CONCURRENCY": "64",
        **env_extra,
    }
    command = [
        sys.executable,
        "-m",
        "flowrunner",
        "serve",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--workers",
        str(workers),
    ]
    log = (data_dir / "server.log").open("wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((data_dir / "server.log").read_text()[-2000:])
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


async def drive(
    url: str,
    headers: dict[str, str],
    clients: int,
    seconds: float,
    call: Callable[[httpx.AsyncClient], Awaitable[None]],
) -> Result:
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)

    async def one(stop_at: float, record: bool) -> None:
        async with httpx.AsyncClient(
            base_url=url, headers=headers, limits=limits, timeout=60
        ) as client:
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                await call(client)
                if record:
                    latencies.append(time.perf_counter() - started)

    warm = time.perf_counter() + min(1.0, seconds / 4)
    await asyncio.gather(*(one(warm, False) for _ in range(clients)))
    began = time.perf_counter()
    await asyncio.gather(*(one(began + seconds, True) for _ in range(clients)))
    return Result(len(latencies), time.perf_counter() - began, latencies)


async def bench_backend(name: str, url: str, seconds: float) -> list[str]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as setup:
        login = await setup.post("/api/v1/login", json={"username": ADMIN[0], "password": ADMIN[1]})
        login.raise_for_status()
        headers = {"Authorization": f"Bearer {login.json()['token']}"}
        created = await setup.post(
            "/api/v1/flows",
            content=ten_node_flow(),
            headers={**headers, "content-type": "application/yaml"},
        )
        created.raise_for_status()
    run_path = f"/api/v1/flows/{created.json()['id']}/run?wait=30s"

    async def run(client: httpx.AsyncClient) -> None:
        response = await client.post(run_path, json={"input": {"x": 1}})
        if response.status_code != 200 or response.json()["status"] != "completed":
            raise RuntimeError(f"run did not complete: {response.status_code} {response.text}")

    async def health(client: httpx.AsyncClient) -> None:
        (await client.get("/healthz")).raise_for_status()

    rows = []
    for clients in LEVELS:
        h = await drive(url, headers, clients, seconds / 2, health)
        r = await drive(url, headers, clients, seconds, run)
        rows.append(
            f"{name:9} {clients:>3} | {r.rps:8.1f} {r.pct(0.5):7.2f} {r.pct(0.99):7.2f} | "
            f"{h.rps:8.1f} {h.pct(0.5):6.2f} {h.pct(0.99):6.2f} | "
            f"{r.pct(0.5) / h.pct(0.5):5.1f}x {h.rps / r.rps:5.1f}x"
        )
        print(rows[-1], flush=True)
    return rows


@contextmanager
def postgres_database(server: str) -> Iterator[str]:
    name = f"flowrunner_bench_{os.getpid()}"
    base = server.rsplit("/", 1)[0]

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(server)
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
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--backends", default="sqlite,sqlite:2,postgres")
    args = parser.parse_args()
    pg = os.environ.get("FLOWRUNNER_BENCH_POSTGRES_URL") or os.environ.get(
        "FLOWRUNNER_TEST_POSTGRES_URL"
    )
    print(f"{NODES}-node flow via POST /run?wait, every run persisted; {args.seconds:g}s a level")
    print(
        "backend  clients |   runs/s  p50 ms  p99 ms | health/s p50 ms p99 ms "
        "| p50 ratio, rps ratio"
    )
    for name in args.backends.split(","):
        backend, _, count = name.partition(":")
        workers = int(count or 1)
        label = backend if workers == 1 else f"{backend}x{workers}"
        with tempfile.TemporaryDirectory() as tmp:
            if backend == "sqlite":
                with serve(Path(tmp), {"FLOWRUNNER_STORAGE": "sqlite"}, workers) as url:
                    asyncio.run(bench_backend(label, url, args.seconds))
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
                    ) as url,
                ):
                    asyncio.run(bench_backend(label, url, args.seconds))


if __name__ == "__main__":
    main()
