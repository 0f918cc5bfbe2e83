"""What a stored sub-flow costs: the same 10 ``set`` nodes run flat, or as a 1-node parent
whose ``flow`` node runs them as a child execution (its own row, events, checkpoints, lease).

Starts a real ``flowrunner serve`` (SQLite in a scratch data dir) on loopback and drives both
flows with 1 and 8 concurrent clients posting ``/api/v1/flows/{id}/run?wait=30s``, interleaved
over ``--rounds`` rounds so a noisy neighbour hits both alike.

    .venv/bin/python bench/subflows.py [--seconds 6] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

import aiohttp
from common import Call, Result, drive
from runs import ADMIN, serve, ten_node_flow

LEVELS = (1, 8)
PARENT = """metadata: {name: Parent}
nodes:
  call: {type: flow, params: {flow: Ten nodes, input: {x: "${input.x}"}}}
"""


async def bench(url: str, seconds: float, rounds: int) -> None:
    async with aiohttp.ClientSession(url) as setup:
        login = await setup.post("/api/v1/login", json={"username": ADMIN[0], "password": ADMIN[1]})
        login.raise_for_status()
        headers = {"Authorization": f"Bearer {(await login.json())['token']}"}
        paths = {}
        for label, yaml in (("flat", ten_node_flow()), ("sub-flow", PARENT)):
            created = await setup.post(
                "/api/v1/flows", data=yaml, headers={**headers, "content-type": "application/yaml"}
            )
            created.raise_for_status()
            paths[label] = f"/api/v1/flows/{(await created.json())['id']}/run?wait=30s"

    def runner(path: str) -> Call:
        async def run(session: aiohttp.ClientSession) -> None:
            async with session.post(path, json={"input": {"x": 1}}) as response:
                body = await response.json()
                if response.status != 200 or body["status"] != "completed":
                    raise RuntimeError(f"run did not complete: {response.status} {body}")

        return run

    print(f"{'flow':9} {'c':>3} | {'runs/s':>8} {'p50 ms':>7} {'p99 ms':>7}")
    for clients in LEVELS:
        results = {label: Result() for label in paths}
        for _ in range(rounds):
            for label, path in paths.items():
                got = await drive(url, headers, clients, seconds / rounds, runner(path))
                results[label].add(got)
        for label, r in results.items():
            print(
                f"{label:9} {clients:>3} | {r.rps:8.1f} {r.pct(0.5):7.2f} {r.pct(0.99):7.2f}",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="measured run time a flow")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds a level")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, serve(Path(tmp), {}) as (url, _pid):
        asyncio.run(bench(url, args.seconds, args.rounds))


if __name__ == "__main__":
    main()
