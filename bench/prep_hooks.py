"""A prep hook and its node's V8 expression: one sandbox round trip per node, or two.

The flow is issue 20's 10-node ``set`` chain, each node with ``n: "${(0, input.n) + 1}"``
(outside the native subset: V8 evaluates it) and a prep hook that reads the resolved params
and writes ``shared``. It runs in this process on the real sandbox (one warm worker), joined
(``Sandbox.evaluate_then_run``: expressions and hook in one request) and as two calls (the
same sandbox behind a host without that method, which is the path before the join), in
interleaved rounds. Per run: sandbox round trips (``Sandbox.observe``), wall time p50, and CPU
of this process and of the worker. Every run's output and ``shared`` are checked.

Run: .venv/bin/python bench/prep_hooks.py [--seconds 6] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

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
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="measured time per flow")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.rounds))
