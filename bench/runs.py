"""Runs through the API: the 10-node flows of issue 20, started with ``?wait``, every run
persisted.

For each backend (SQLite in a scratch data dir; PostgreSQL in a scratch database when
``FLOWRUNNER_BENCH_POSTGRES_URL`` or ``FLOWRUNNER_TEST_POSTGRES_URL`` names a server), starts a
real ``flowrunner serve`` on loopback and drives it with 1, 8 and 32 concurrent keep-alive
clients (Bearer token). Each client posts ``/api/v1/flows/{id}/run?wait=30s`` with input
``{"n": 0}`` and checks every answer: 200, completed, and the right output. The flows, each
ten nodes doing n -> n + 1 (the shapes measured against n8n 2.8.4 in issue 20):

* ``set``: ten ``set`` nodes with ``n: "${input.n + 1}"`` (n8n: ten Set nodes);
* ``js``: ten ``transform`` nodes with ``return {n: input.n + 1};`` (n8n: ten Code nodes);
* ``path``: the ``set`` flow with a plain path, ``n: "${input.n}"`` (no JavaScript at all);
* ``v8``: the ``js`` flow with ``const m = input.n + 1; return {n: m};``: a body that is not
  one ``return`` of the native subset, so each node runs in a sandbox worker (the ``js``
  flow's body is evaluated natively, with V8's answer: docs/scripting.md).

The same server's bare ``/healthz`` is measured in the same run at the same concurrency,
interleaved with the runs over ``--rounds`` rounds so a noisy neighbour hits all alike; the
ratios say what a persisted 10-node run costs over the HTTP round trip itself, and ``vs n8n``
divides runs/s by n8n's figure from the issue. ``cpu ms`` is CPU time per run: ``main`` of the
server process (all its threads), ``sandbox`` of its child processes (the sandbox workers,
live and exited). A backend named ``sqlite:2`` (or ``postgres:2``) serves with
``--workers 2`` (its CPU is not split: the workers are children too); one named
``postgres-sqlalchemy`` (or ``sqlite-sqlalchemy``) serves with
``FLOWRUNNER_DATABASE_DIRECT=false``, every store call through SQLAlchemy: the hot path's
before and after, side by side in one run.

    .venv/bin/python bench/runs.py [--seconds 6] [--rounds 3] [--flows set,js,path,v8]
        [--backends sqlite,sqlite:2,postgres-sqlalchemy,postgres] [--async-commit]
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
from common import Call, Result, drive, free_port, server
from cryptography.fernet import Fernet

ADMIN = ("bench", "bench-password-1")
LEVELS = (1, 8, 32)
NODES = 10
# n8n 2.8.4 on this kind of machine, SQLite, every run recorded (issue 20), runs/s at 1/8/32
# connections: webhook -> 10 Set nodes ({{$json.n + 1}}) and webhook -> 10 Code nodes.
N8N = {
    "set": {1: 49.0, 8: 87.0, 32: 69.0},
    "js": {1: 23.0, 8: 38.0, 32: 40.0},
    "v8": {1: 23.0, 8: 38.0, 32: 40.0},
}


def set_flow(expression: str) -> str:
    """Ten ``set`` nodes, each writing ``n`` from ``expression`` (over the node's input)."""
    lines = ["metadata: {name: Ten sets}", "nodes:"]
    for i in range(1, NODES + 1):
        nxt = f", next: {{default: n{i + 1}}}" if i < NODES else ""
        lines.append(f'  n{i}: {{type: set, params: {{values: {{n: "${{{expression}}}"}}}}{nxt}}}')
    return "\n".join(lines) + "\n"


def transform_flow(script: str) -> str:
    """Ten JavaScript ``transform`` nodes, each adding one to the previous output's ``n``."""
    lines = ["metadata: {name: Ten transforms}", "nodes:"]
    for i in range(1, NODES + 1):
        nxt = f"\n    next: {{default: n{i + 1}}}" if i < NODES else ""
        lines += [
            f"  n{i}:",
            "    type: transform",
            "    params:",
            f"      script: '{script}'" + nxt,
        ]
    return "\n".join(lines) + "\n"


# name -> (flow YAML, the output every run must end with for input {"n": 0})
FLOWS: dict[str, tuple[str, dict[str, int]]] = {
    "set": (set_flow("input.n + 1"), {"n": NODES}),
    "js": (transform_flow("return {n: input.n + 1};"), {"n": NODES}),
    "path": (set_flow("input.n"), {"n": 0}),
    # The same transforms written as two statements: outside the native subset, so every
    # node is a round trip to a sandbox worker (what `js` measured before native returns).
    "v8": (transform_flow("const m = input.n + 1; return {n: m};"), {"n": NODES}),
}


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def tree_cpu_seconds(pid: int) -> tuple[float, float] | None:
    """CPU seconds of ``pid`` itself (all threads) and of its children (the sandbox workers,
    live and exited); None off Linux."""
    own = _stat_fields(pid)
    if own is None:
        return None
    main = int(own[11]) + int(own[12])  # utime stime
    children = int(own[13]) + int(own[14])  # cutime cstime: exited children
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(pid):
            fields = _stat_fields(int(entry.name))
            if fields is not None and fields[1] == str(pid):  # its parent is the server
                children += int(fields[11]) + int(fields[12])
    tick = os.sysconf("SC_CLK_TCK")
    return main / tick, children / tick


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
        # A busy shared machine can stall a worker past the default 1 s: a run failed by a
        # neighbour's load would stop the benchmark, not measure Flowrunner.
        "FLOWRUNNER_SCRIPT_TIMEOUT": "10",
        **env_extra,
    }
    argv = [sys.executable, "-m", "flowrunner", "serve", "--port", str(port)]
    # The default log level, as the README starts the server: a log line per run and
    # uvicorn's access line per request are part of what a run costs.
    argv += ["--workers", str(workers)]
    url = f"http://127.0.0.1:{port}"
    with server(argv, env, f"{url}/healthz", log=data_dir / "server.log") as process:
        yield url, process.pid


async def prepare(url: str, flows: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Log in and create the flows: the headers and each flow's run path."""
    async with aiohttp.ClientSession(url) as setup:
        login = await setup.post("/api/v1/login", json={"username": ADMIN[0], "password": ADMIN[1]})
        login.raise_for_status()
        headers = {"Authorization": f"Bearer {(await login.json())['token']}"}
        paths = {}
        for flow in flows:
            created = await setup.post(
                "/api/v1/flows",
                data=FLOWS[flow][0],
                headers={**headers, "content-type": "application/yaml"},
            )
            created.raise_for_status()
            paths[flow] = f"/api/v1/flows/{(await created.json())['id']}/run?wait=30s"
    return headers, paths


async def bench_backend(
    name: str, url: str, pid: int | None, seconds: float, rounds: int, flows: list[str]
) -> None:
    headers, run_paths = await prepare(url, flows)

    def runner(flow: str) -> Call:
        run_path, expected = run_paths[flow], FLOWS[flow][1]

        async def run(session: aiohttp.ClientSession) -> None:
            async with session.post(run_path, json={"input": {"n": 0}}) as response:
                body = await response.json()
                if (
                    response.status != 200
                    or body["status"] != "completed"
                    or body["output"] != expected
                ):
                    raise RuntimeError(f"wrong answer: {response.status} {body}")

        return run

    async def health(session: aiohttp.ClientSession) -> None:
        async with session.get("/healthz") as response:
            response.raise_for_status()
            await response.read()

    async def measure(clients: int, secs: float, call: Call) -> tuple[Result, list[float] | None]:
        probe = (lambda: tree_cpu_seconds(pid)) if pid else None
        result = await drive(url, headers, clients, secs, call, cpu=probe)
        return result, list(result.cpu) if result.cpu else None

    for clients in LEVELS:
        h = Result()
        r = {flow: Result() for flow in flows}
        cpu: dict[str, list[float] | None] = {flow: [0.0, 0.0] for flow in flows}
        for _ in range(rounds):
            got, _ = await measure(clients, seconds / rounds / 2, health)
            h.add(got)
            for flow in flows:
                got, used = await measure(clients, seconds / rounds, runner(flow))
                r[flow].add(got)
                spent = cpu[flow]
                cpu[flow] = (
                    None
                    if used is None or spent is None
                    else [
                        spent[0] + used[0],
                        spent[1] + used[1],
                    ]
                )
        for flow in flows:
            rf, spent = r[flow], cpu[flow]
            if spent is not None and rf.count:
                cpu_ms = f"{spent[0] / rf.count * 1000:5.2f} {spent[1] / rf.count * 1000:5.2f}"
            else:
                cpu_ms = "    -     -"
            base = N8N.get(flow, {}).get(clients)
            n8n = f"{rf.rps / base:5.1f}x" if base else "     -"
            print(
                f"{name:19} {flow:4} {clients:>3} | {rf.rps:7.1f} {rf.pct(0.5):6.2f} "
                f"{rf.pct(0.99):6.2f} | {cpu_ms} | {h.rps:8.1f} {h.pct(0.5):6.2f} "
                f"{h.pct(0.99):6.2f} | {rf.pct(0.5) / h.pct(0.5):5.1f}x {h.rps / rf.rps:5.1f}x "
                f"| {n8n}",
                flush=True,
            )


@contextmanager
def postgres_database(
    server_url: str, suffix: str = "", *, async_commit: bool = False
) -> Iterator[str]:
    """A scratch database on the server of ``server_url`` (its URL), dropped on the way out."""
    name = f"flowrunner_bench_{os.getpid()}{'_' if suffix else ''}{suffix}"
    base = server_url.rsplit("/", 1)[0]

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(server_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    if async_commit:  # for this scratch database only
        asyncio.run(admin(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="measured run time a level")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds a level")
    parser.add_argument("--backends", default="sqlite,sqlite:2,postgres-sqlalchemy,postgres")
    parser.add_argument(
        "--flows",
        default="set,js,path,v8",
        help="set: 10 set nodes with input.n + 1, js: 10 transforms, path: 10 sets with "
        "input.n, v8: 10 transforms each run by a sandbox worker",
    )
    parser.add_argument(
        "--async-commit",
        action="store_true",
        help="PostgreSQL commits do not wait for the WAL flush (synchronous_commit=off on the"
        " scratch database): what the server's CPU allows where fsync is slow; a measurement,"
        " not a production setting",
    )
    args = parser.parse_args()
    flows = args.flows.split(",")
    if unknown := set(flows) - set(FLOWS):
        parser.error(f"unknown flows: {', '.join(sorted(unknown))}")
    pg = os.environ.get("FLOWRUNNER_BENCH_POSTGRES_URL") or os.environ.get(
        "FLOWRUNNER_TEST_POSTGRES_URL"
    )
    print(
        f"{NODES}-node flows via POST /run?wait, every run persisted; "
        f"{args.seconds:g}s a level and flow in {args.rounds} rounds"
        + ("; PostgreSQL with synchronous_commit=off" if args.async_commit else "")
    )
    print(
        "backend             flow clients | runs/s p50 ms p99 ms | cpu ms main sandbox "
        "| health/s p50 ms p99 ms | p50, rps ratio | vs n8n"
    )
    for name in args.backends.split(","):
        kind, _, count = name.partition(":")
        workers = int(count or 1)
        label = kind if workers == 1 else f"{kind}x{workers}"
        backend, _, path = kind.partition("-")
        if path not in ("", "sqlalchemy"):
            parser.error(f"unknown backend {name!r}")
        direct = {"FLOWRUNNER_DATABASE_DIRECT": "false" if path else "true"}
        with tempfile.TemporaryDirectory() as tmp:
            if backend == "sqlite":
                env = {"FLOWRUNNER_STORAGE": "sqlite", **direct}
                with serve(Path(tmp), env, workers) as (url, pid):
                    # Worker processes are the server's children: their CPU is not counted.
                    owner = pid if workers == 1 else None
                    asyncio.run(bench_backend(label, url, owner, args.seconds, args.rounds, flows))
            elif backend == "postgres":
                if not pg:
                    print("postgres  skipped: set FLOWRUNNER_BENCH_POSTGRES_URL")
                    continue
                with (
                    postgres_database(pg, async_commit=args.async_commit) as db,
                    serve(
                        Path(tmp),
                        {
                            "FLOWRUNNER_STORAGE": "postgres",
                            "FLOWRUNNER_DATABASE_URL": db,
                            **direct,
                        },
                        workers,
                    ) as (url, pid),
                ):
                    owner = pid if workers == 1 else None
                    asyncio.run(bench_backend(label, url, owner, args.seconds, args.rounds, flows))


if __name__ == "__main__":
    main()
