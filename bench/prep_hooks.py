"""A prep hook and its node's V8 expression: one sandbox round trip per node, or two.

The flow is issue 20's 10-node ``set`` chain, each node with ``n: "${(0, input.n) + 1}"``
(outside the native subset: V8 evaluates it) and a prep hook that reads the resolved params
and writes ``shared``. It runs in this process on the real sandbox (one warm worker), joined
(``Sandbox.evaluate_then_run``: expressions and hook in one request) and as two calls (the
same sandbox behind a host without that method, which is the path before the join), in
interleaved rounds. Per run: sandbox round trips (``Sandbox.observe``), wall time p50, and CPU
of this process and of the worker. Every run's output and ``shared`` are checked.

``--serve``: the same flow through a real ``flowrunner serve`` (SQLite, every run recorded),
one client: runs/s, p50, sandbox round trips per run (from ``/metrics``) and CPU per run of
the server and of its workers. ``--server-src DIR`` runs the server from another checkout's
``src`` (e.g. main's, for the figures before the join).

Run: .venv/bin/python bench/prep_hooks.py [--seconds 6] [--rounds 3]
                                          [--serve [--server-src ../main/src]]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from common import cpu_seconds

from flowrunner.definition import compile_flow, load_flow
from flowrunner.scripting import Sandbox, ScriptResult
from flowrunner.scripting.host import SyntaxKind

HOOK = "shared.seen = (shared.seen || 0) + params.values.n; return {values: {n: params.values.n}};"


def ten_hooked_sets() -> str:
    lines = ["metadata: {name: Ten hooked sets}", "nodes:"]
    for i in range(1, 11):
        nxt = f", next: {{default: n{i + 1}}}" if i < 10 else ""
        lines.append(
            f'  n{i}: {{type: set, params: {{values: {{n: "${{(0, input.n) + 1}}"}}}},'
            f' hooks: {{prep: "{HOOK}"}}{nxt}}}'
        )
    return "\n".join(lines) + "\n"


class TwoCalls:
    """The real sandbox behind a host written before ``evaluate_then_run``."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    async def evaluate_expression(self, code: str, scope: Mapping[str, Any]) -> Any:
        return await self.sandbox.evaluate_expression(code, scope)

    async def evaluate_expressions(
        self, codes: Sequence[str], scope: Mapping[str, Any]
    ) -> list[Any]:
        return await self.sandbox.evaluate_expressions(codes, scope)

    async def run_function(self, body: str, scope: Mapping[str, Any]) -> ScriptResult:
        return await self.sandbox.run_function(body, scope)

    def check_syntax(self, code: str, *, kind: SyntaxKind) -> None:
        self.sandbox.check_syntax(code, kind=kind)


def cpu(pid: int) -> float:
    return cpu_seconds(pid) or 0.0


async def main(seconds: float, rounds: int) -> None:
    async with Sandbox(workers=1) as sandbox:
        trips = 0

        def count(_: float) -> None:
            nonlocal trips
            trips += 1

        sandbox.observe = count
        definition = load_flow(ten_hooked_sets(), scripts=sandbox)
        flows = {
            "joined (one call)": compile_flow(definition, scripts=sandbox),
            "two calls (before)": compile_flow(definition, scripts=TwoCalls(sandbox)),
        }
        stats: dict[str, dict[str, Any]] = {
            name: {"runs": 0, "trips": 0, "own": 0.0, "worker": 0.0, "wall": []} for name in flows
        }
        for flow in flows.values():  # warm: the worker compiles each snippet once
            for _ in range(20):
                await flow.run({"n": 1})
        for _ in range(rounds):
            for name, flow in flows.items():
                (worker,) = sandbox.worker_pids
                s = stats[name]
                trips_before, own, theirs = trips, cpu(os.getpid()), cpu(worker)
                stop = time.perf_counter() + seconds / rounds
                while time.perf_counter() < stop:
                    started = time.perf_counter()
                    result = await flow.run({"n": 1})
                    s["wall"].append(time.perf_counter() - started)
                    if result.output != {"n": 11} or result.shared["seen"] != 65:
                        raise RuntimeError(f"{name}: wrong result {result.output} {result.shared}")
                    s["runs"] += 1
                s["trips"] += trips - trips_before
                s["own"] += cpu(os.getpid()) - own
                s["worker"] += cpu(worker) - theirs
        print(
            f"{'10 set nodes, prep hook + V8 expression':<40} | round trips  p50 ms | cpu ms: "
            "python + worker"
        )
        for name, s in stats.items():
            runs = s["runs"]
            p50 = sorted(s["wall"])[len(s["wall"]) // 2] * 1000
            print(
                f"{name:<40} | {s['trips'] / runs:11.1f} {p50:7.2f} | "
                f"{s['own'] / runs * 1000:6.2f} + {s['worker'] / runs * 1000:5.2f}"
                f"   ({runs} runs)"
            )


async def round_trips(session: Any) -> float:
    async with session.get("/metrics") as answer:
        text = await answer.text()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("flowrunner_sandbox_evaluation_seconds_count")
    )


async def through_serve(url: str, pid: int, seconds: float) -> None:
    import aiohttp
    from common import drive
    from runs import ADMIN, tree_cpu_seconds

    async with aiohttp.ClientSession(url) as setup:
        login = await setup.post("/api/v1/login", json={"username": ADMIN[0], "password": ADMIN[1]})
        login.raise_for_status()
        headers = {"Authorization": f"Bearer {(await login.json())['token']}"}
        created = await setup.post(
            "/api/v1/flows",
            data=ten_hooked_sets(),
            headers={**headers, "content-type": "application/yaml"},
        )
        created.raise_for_status()
        path = f"/api/v1/flows/{(await created.json())['id']}/run?wait=30s"

        done = 0  # every run, the warm-up's too: the server's round-trip counter sees them

        async def run(session: aiohttp.ClientSession) -> None:
            nonlocal done
            async with session.post(path, json={"input": {"n": 1}}) as response:
                body = await response.json()
                if response.status != 200 or body["output"] != {"n": 11}:
                    raise RuntimeError(f"run did not complete: {response.status} {body}")
            done += 1

        async with aiohttp.ClientSession(url, headers=headers) as metrics:
            before = await round_trips(metrics)
            result = await drive(url, headers, 1, seconds, run, cpu=lambda: tree_cpu_seconds(pid))
            trips = await round_trips(metrics) - before
    print(
        f"{'10 hooked sets via serve, 1 client':<36} | runs/s  p50 ms | trips/run | cpu ms: "
        "server + workers"
    )
    own, workers = result.cpu or (0.0, 0.0)
    print(
        f"{'':<36} | {result.rps:6.1f} {result.pct(0.5):7.2f} | {trips / done:9.1f} | "
        f"{own / result.count * 1000:6.2f} + {workers / result.count * 1000:5.2f}"
        f"   ({result.count} runs)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="measured time per flow")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--serve", action="store_true", help="through flowrunner serve")
    parser.add_argument("--server-src", help="PYTHONPATH for the server (another checkout)")
    args = parser.parse_args()
    if not args.serve:
        asyncio.run(main(args.seconds, args.rounds))
    else:
        import tempfile
        from pathlib import Path

        from runs import serve

        extra = {"FLOWRUNNER_STORAGE": "sqlite"}
        if args.server_src:
            extra["PYTHONPATH"] = str(Path(args.server_src).resolve())
        print(f"server from {extra.get('PYTHONPATH', 'this checkout')}")
        with tempfile.TemporaryDirectory() as tmp, serve(Path(tmp), extra) as (url, pid):
            asyncio.run(through_serve(url, pid, args.seconds))
