"""One account saturating a server, another's latency: what per-account fairness buys.

Starts a real ``flowrunner serve`` (SQLite, default limits: 16 run slots, 2 script workers,
1 s script timeout) with two accounts. Account B runs a one-node flow and a one-node
``transform`` back to back with ``?wait`` (one client) and the latencies are reported:

- ``idle``: nothing else runs;
- ``A sleeps``: A has 20 runs sleeping in a ``delay: 1h`` node;
- ``A spins``: 8 clients of A keep endless-script runs going (each ends at the script
  timeout and is started again at once).

A B run that has not finished after ``--give-up`` seconds counts as ``stuck``. Run it
against another checkout with ``PYTHONPATH=<that checkout>/src``.

    .venv/bin/python bench/fairness.py [--runs 20] [--give-up 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from common import Result, free_port, server
from cryptography.fernet import Fernet

ADMIN = ("bench", "bench-password-1")
SLEEPS = "metadata: {name: Sleeps}\nnodes:\n  nap: {type: delay, params: {duration: 1h}}\n"
SPINS = (
    "metadata: {name: Spins}\nnodes:\n"
    "  spin: {type: transform, params: {script: 'while (true) {}'}}\n"
)
ONE_NODE = "metadata: {name: One}\nnodes:\n  only: {type: set, params: {values: {done: true}}}\n"
TRANSFORM = (
    "metadata: {name: Doubles}\nnodes:\n"
    "  double: {type: transform, params: {script: 'const d = input.n * 2; return {d};'}}\n"
)


async def login(http: aiohttp.ClientSession, username: str, password: str) -> dict[str, str]:
    async with http.post(
        "/api/v1/login", json={"username": username, "password": password}
    ) as response:
        response.raise_for_status()
        return {"Authorization": f"Bearer {(await response.json())['token']}"}


async def flow(http: aiohttp.ClientSession, headers: dict[str, str], yaml: str) -> str:
    async with http.post(
        "/api/v1/flows", data=yaml, headers={**headers, "content-type": "application/yaml"}
    ) as response:
        response.raise_for_status()
        flow_id: str = (await response.json())["id"]
        return flow_id


async def measure(
    http: aiohttp.ClientSession, headers: dict[str, str], flow_id: str, runs: int, give_up: float
) -> tuple[Result, int]:
    result, stuck = Result(), 0
    began = time.perf_counter()
    for n in range(runs):
        started = time.perf_counter()
        async with http.post(
            f"/api/v1/flows/{flow_id}/run?wait={give_up:g}s",
            json={"input": {"n": n}},
            headers=headers,
        ) as response:
            body = await response.json()
        if response.status == 200 and body["status"] == "completed":
            result.latencies.append(time.perf_counter() - started)
        else:
            stuck += 1
            if stuck >= 2:
                break  # it will not get better: do not spend minutes proving it
    result.count = len(result.latencies)
    result.seconds = time.perf_counter() - began
    return result, stuck


def line(label: str, what: str, result: Result, stuck: int) -> str:
    if not result.count:
        return f"{label:9} {what:10} | {'-':>8} {'-':>8} | stuck {stuck}"
    return (
        f"{label:9} {what:10} | {result.pct(0.5):8.1f} {max(result.latencies) * 1000:8.1f} "
        f"| stuck {stuck}"
    )


async def bench(url: str, runs: int, give_up: float) -> None:
    async with aiohttp.ClientSession(url, timeout=aiohttp.ClientTimeout(total=120)) as http:
        admin = await login(http, *ADMIN)
        for name in ("alice", "bob"):
            async with http.post(
                "/api/v1/accounts",
                json={"username": name, "password": "password-123"},
                headers=admin,
            ) as response:
                response.raise_for_status()
        a = await login(http, "alice", "password-123")
        b = await login(http, "bob", "password-123")
        one, double = await flow(http, b, ONE_NODE), await flow(http, b, TRANSFORM)

        async def both(label: str) -> None:
            for what, flow_id in (("one node", one), ("transform", double)):
                result, stuck = await measure(http, b, flow_id, runs, give_up)
                print(line(label, what, result, stuck), flush=True)

        await both("idle")

        sleeps = await flow(http, a, SLEEPS)
        sleeping = []
        for _ in range(20):
            async with http.post(f"/api/v1/flows/{sleeps}/run", json={}, headers=a) as response:
                sleeping.append((await response.json())["execution_id"])
        await asyncio.sleep(1)
        await both("A sleeps")
        for execution_id in sleeping:
            async with http.post(f"/api/v1/executions/{execution_id}/cancel", headers=a):
                pass

        spins = await flow(http, a, SPINS)
        stop = asyncio.Event()

        async def spin() -> None:
            while not stop.is_set():
                async with http.post(
                    f"/api/v1/flows/{spins}/run?wait=30s", json={}, headers=a
                ) as response:
                    await response.read()

        spinners = [asyncio.create_task(spin()) for _ in range(8)]
        await asyncio.sleep(1.5)
        await both("A spins")
        stop.set()
        for task in spinners:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*spinners)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="B runs per flow and scenario")
    parser.add_argument("--give-up", type=float, default=10.0, help="seconds a B run may take")
    args = parser.parse_args()
    print("B's latency (ms) while account A saturates the server; one client for B")
    print(f"{'scenario':9} {'B runs':10} | {'p50':>8} {'max':>8} | not done in {args.give_up:g}s")
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        env = {
            "FLOWRUNNER_DATA_DIR": tmp,
            "FLOWRUNNER_STORAGE": "sqlite",
            "FLOWRUNNER_SECRET_KEYS": Fernet.generate_key().decode(),
            "FLOWRUNNER_ADMIN_USERNAME": ADMIN[0],
            "FLOWRUNNER_ADMIN_PASSWORD": ADMIN[1],
            "FLOWRUNNER_SHUTDOWN_GRACE_SECONDS": "1",
        }
        argv = [sys.executable, "-m", "flowrunner", "serve", "--port", str(port)]
        argv += ["--log-level", "warning"]
        url = f"http://127.0.0.1:{port}"
        with server(argv, env, f"{url}/healthz", log=Path(tmp) / "server.log"):
            asyncio.run(bench(url, args.runs, args.give_up))


if __name__ == "__main__":
    main()
