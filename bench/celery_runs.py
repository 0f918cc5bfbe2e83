"""Celery workers against the in-process executor: runs/s, the queue hop, CPU per run by role.

On PostgreSQL (a scratch database on ``FLOWRUNNER_BENCH_POSTGRES_URL`` or
``FLOWRUNNER_TEST_POSTGRES_URL``) and a private ``redis-server`` on a free port (the event bus,
and the broker unless ``--broker amqp://...`` names a RabbitMQ), three set-ups are measured in
one run, each with a fresh ``flowrunner serve``:

- ``in-process``: the API process runs the runs (the default executor);
- ``celery x1`` / ``celery x2``: the API process enqueues, one or two ``flowrunner worker``
  processes (``--concurrency 8`` each) run them.

Each drives the 10-node ``path`` flow of ``bench/runs.py`` (ten ``set`` nodes) through
``POST /run?wait`` with 1 client (latency: the queue hop is the p50/p99 difference with
``in-process``) and with 8 (throughput). ``cpu ms`` is CPU time per run of each role,
measured separately: the API process (and its children), the workers, Redis and every
``postgres`` process of the machine (shared with anything else running: an upper bound).
The scale-out model at the end turns those into runs/s for N workers on M cores.

    .venv/bin/python bench/celery_runs.py [--seconds 8] [--broker amqp://guest:guest@127.0.0.1//]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from common import Result, drive, free_port, server
from cryptography.fernet import Fernet
from runs import ADMIN, FLOWS, postgres_database, tree_cpu_seconds

CONCURRENCY = 8  # runs at once per worker process (Celery threads)


@dataclass
class Measured:
    label: str
    one: Result
    eight: Result
    cpu_ms: dict[str, float]  # role -> CPU ms per run (8 clients)


def _postgres_pids() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _cpu(pids: list[int]) -> float:
    """CPU seconds of ``pids`` and their children (sandbox workers) so far."""
    return sum(sum(tree_cpu_seconds(pid) or (0.0, 0.0)) for pid in pids)


@contextmanager
def redis_server() -> Iterator[tuple[str, int]]:
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(0.3)
        yield f"redis://127.0.0.1:{port}", process.pid
    finally:
        process.kill()
        process.wait()


@contextmanager
def worker(env: dict[str, str], log: Path) -> Iterator[int]:
    argv = [sys.executable, "-m", "flowrunner", "worker", "--concurrency", str(CONCURRENCY)]
    argv += ["--log-level", "warning"]
    with log.open("wb") as out:
        process = subprocess.Popen(argv, env={**os.environ, **env}, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 120
        # --log-level warning hides Celery's "ready" line: wait for its consumer connection.
        while "celery@" not in log.read_text() and "ready" not in log.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        yield process.pid
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def measure(label: str, url: str, roles: dict[str, list[int]], seconds: float) -> Measured:
    async with aiohttp.ClientSession(url) as setup:
        login = await setup.post("/api/v1/login", json={"username": ADMIN[0], "password": ADMIN[1]})
        login.raise_for_status()
        headers = {"Authorization": f"Bearer {(await login.json())['token']}"}
        created = await setup.post(
            "/api/v1/flows",
            data=FLOWS["path"][0],  # ten set nodes, each copying input.n
            headers={**headers, "content-type": "application/yaml"},
        )
        created.raise_for_status()
        path = f"/api/v1/flows/{(await created.json())['id']}/run?wait=30s"

    async def run(session: aiohttp.ClientSession) -> None:
        async with session.post(path, json={"input": {"n": 0}}) as response:
            body = await response.json()
            if response.status != 200 or body["status"] != "completed":
                raise RuntimeError(f"run did not complete: {response.status} {body}")

    await drive(url, headers, 8, 2.0, run)  # warm-up: compiled flow, pools, worker threads
    one = await drive(url, headers, 1, seconds, run)
    before = {role: _cpu(pids) for role, pids in roles.items()}
    eight = await drive(url, headers, 8, seconds, run)
    after = {role: _cpu(pids) for role, pids in roles.items()}
    per_run = {r: (after[r] - before[r]) / max(eight.count, 1) * 1000 for r in roles}
    return Measured(label, one, eight, per_run)


def run_setup(
    label: str, workers: int, db: str, redis_url: str, redis_pid: int, broker: str | None,
    tmp: Path, seconds: float,
) -> Measured:  # fmt: skip
    env = {
        "FLOWRUNNER_DATA_DIR": str(tmp),
        "FLOWRUNNER_SECRET_KEYS": Fernet.generate_key().decode(),
        "FLOWRUNNER_ADMIN_USERNAME": ADMIN[0],
        "FLOWRUNNER_ADMIN_PASSWORD": ADMIN[1],
        "FLOWRUNNER_STORAGE": "postgres",
        "FLOWRUNNER_DATABASE_URL": db,
        "FLOWRUNNER_EVENT_BUS_URL": f"{redis_url}/0",
        "FLOWRUNNER_EXECUTOR_CONCURRENCY": "64",
        "FLOWRUNNER_SCHEDULER_ENABLED": "false",
    }
    if workers:
        env["FLOWRUNNER_EXECUTOR"] = "celery"
        env["FLOWRUNNER_BROKER_URL"] = broker or f"{redis_url}/1"
        env["FLOWRUNNER_DEFAULT_QUEUE"] = f"bench-{os.getpid()}-{label.replace(' ', '')}"
    port = free_port()
    argv = [sys.executable, "-m", "flowrunner", "serve", "--port", str(port)]
    argv += ["--log-level", "warning"]
    url = f"http://127.0.0.1:{port}"
    with ExitStack() as stack:
        api = stack.enter_context(server(argv, env, f"{url}/healthz", log=tmp / "server.log"))
        pids = [stack.enter_context(worker(env, tmp / f"worker-{n}.log")) for n in range(workers)]
        roles = {"api": [api.pid], "workers": pids, "redis": [redis_pid]}
        roles["postgres"] = _postgres_pids()
        return asyncio.run(measure(label, url, roles, seconds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="measured time per level")
    parser.add_argument("--broker", default=None, help="amqp:// URL (default: the Redis)")
    args = parser.parse_args()
    pg = os.environ.get("FLOWRUNNER_BENCH_POSTGRES_URL") or os.environ.get(
        "FLOWRUNNER_TEST_POSTGRES_URL"
    )
    if not pg:
        raise SystemExit("set FLOWRUNNER_BENCH_POSTGRES_URL (a PostgreSQL server)")
    broker = "RabbitMQ" if args.broker else "Redis"
    print(
        f"10-node flow via POST /run?wait on PostgreSQL, broker {broker}, {args.seconds:g}s/level"
    )
    print(
        "setup      | 1 client: runs/s p50 ms p99 ms | 8 clients: runs/s p50 ms p99 ms "
        "| cpu ms/run: api workers redis postgres"
    )
    results: list[Measured] = []
    with redis_server() as (redis_url, redis_pid):
        for label, workers in (("in-process", 0), ("celery x1", 1), ("celery x2", 2)):
            with tempfile.TemporaryDirectory() as tmp, postgres_database(pg) as db:
                got = run_setup(
                    label, workers, db, redis_url, redis_pid, args.broker, Path(tmp),
                    args.seconds,
                )  # fmt: skip
            results.append(got)
            c = got.cpu_ms
            print(
                f"{label:10} | {got.one.rps:15.1f} {got.one.pct(0.5):6.1f} {got.one.pct(0.99):6.1f}"
                f" | {got.eight.rps:16.1f} {got.eight.pct(0.5):6.1f} {got.eight.pct(0.99):6.1f}"
                f" | {c['api']:15.2f} {c['workers']:7.2f} {c['redis']:5.2f} {c['postgres']:8.2f}",
                flush=True,
            )
    base = results[0]
    print("\nqueue hop (1 client, celery minus in-process):")
    for got in results[1:]:
        print(
            f"  {got.label}: p50 +{got.one.pct(0.5) - base.one.pct(0.5):.1f} ms, "
            f"p99 +{got.one.pct(0.99) - base.one.pct(0.99):.1f} ms; "
            f"8 clients {got.eight.rps / base.eight.rps:.2f}x the in-process runs/s"
        )
    model(results[-1])


def model(celery: Measured) -> None:
    """Runs/s for N workers on M cores, from CPU per run by role (8 clients, celery x2)."""
    c = celery.cpu_ms
    per_run = c["api"] + c["workers"] + c["redis"] + c["postgres"]
    print(
        f"\nscale-out model (CPU ms per run: api {c['api']:.2f}, worker {c['workers']:.2f}, "
        f"redis {c['redis']:.2f}, postgres {c['postgres']:.2f}; total {per_run:.2f}):"
    )
    print("  a worker core runs at most {:.0f} runs/s; an API core feeds {:.0f} runs/s".format(
        1000 / c["workers"], 1000 / c["api"]))  # fmt: skip
    print("  cores M | runs/s if everything shares M cores | workers N to keep them busy")
    for cores in (2, 4, 8, 16, 32):
        rate = cores * 1000 / per_run
        workers = rate * c["workers"] / 1000
        print(f"  {cores:7} | {rate:35.0f} | {workers:5.1f}")


if __name__ == "__main__":
    main()
