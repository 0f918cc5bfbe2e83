"""``${...}`` resolution: plain paths, native JavaScript expressions, and V8 for comparison.

Three parts:

1. Paths (no JavaScript): resolutions per second for typical shapes; target >= 200,000/s.
2. Native vs V8: the cost of one expression evaluated natively (``jsnative``) and the same
   expression through the real sandbox (a warm worker process, one round trip each), and
   the ratio.
3. ``--serve``: a real ``flowrunner serve`` (SQLite, every run persisted) running the
   10-node ``set`` flow of issue 20, each node ``n: "${input.n + 1}"`` (native), the same
   arithmetic forced through V8 (``${(0, input.n) + 1}``: what it cost before), and a plain
   path (``${input.n}``), at 1/8/32 clients in interleaved rounds; every response is checked
   (status completed, output ``n``). ``cpu ms`` is the CPU time per run of the server process
   and of its sandbox workers: on a busy machine the wall-clock rates mislead (work split
   over two processes gets two shares of a contended CPU), the CPU per run does not.
   ``--server-src DIR`` runs the server from another checkout's ``src``.

Run: .venv/bin/python bench/expressions.py [--serve | --serve-only] [--seconds 6] [--rounds 3]
                                          [--server-src ../main/src]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flowrunner.expressions import SCOPE_NAMES, compile_expression, compile_template, compile_value
from flowrunner.scripting import Sandbox

SCOPE: dict[str, Any] = {
    "input": {
        "user": {"name": "Ada", "id": 7},
        "items": [{"id": i} for i in range(50)],
        "n": 41,
        "price": 9.99,
        "qty": "3",
        "status": "paid",
    },
    "shared": {"k": "v", "token": "abc"},
    "results": {"fetch": {"status": 200, "body": [{"id": "first"}, {"id": "second"}]}},
    "params": {},
    "execution": {"id": "run-1"},
    "error": None,
    "secrets": {"TOKEN": "s3cr3t"},
}

# name -> (compiled value, number of ${...} it holds)
CASES: dict[str, tuple[Any, int]] = {
    "whole path      ${input.user.name}": (compile_template("${input.user.name}"), 1),
    "deep index      ${results.fetch.body[0].id}": (
        compile_template("${results.fetch.body[0].id}"),
        1,
    ),
    "negative index  ${input.items[-1].id}": (compile_template("${input.items[-1].id}"), 1),
    "interpolated    2 expressions in text": (
        compile_template("Hello ${input.user.name}, run ${execution.id}"),
        2,
    ),
    "params tree     3 params, 2 expressions": (
        compile_value(
            {
                "url": "https://x.test/${input.user.id}",
                "headers": {"A": "Bearer ${secrets.TOKEN}"},
                "method": "GET",
            }
        ),
        2,
    ),
}

# Native JavaScript expressions, each also run through V8 for the comparison.
NATIVE = [
    "input.n + 1",
    "input.price * input.qty",
    "input.status === 'paid' && input.n > 10",
    "input.user.name + ' #' + input.user.id",
    "input.missing ?? 'default'",
    "input.n % 2 == 0 ? 'even' : 'odd'",
    "results.fetch.status >= 200 && results.fetch.status < 300",
    "input.items.length / 4",
]


def rate(call: Callable[[], Any], seconds: float = 0.5) -> float:
    count = 0
    batch = 2000
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(batch):
            call()
        count += batch
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def paths() -> None:
    print(f"{'case':<46} {'values/s':>11} {'expressions/s':>14}  (target 200,000 expressions/s)")
    worst = float("inf")
    for name, (resolver, expressions) in CASES.items():
        per_value = rate(lambda r=resolver: r.resolve(SCOPE))
        per_expression = per_value * expressions
        worst = min(worst, per_expression)
        verdict = "ok" if per_expression >= 200_000 else "BELOW"
        print(f"{name:<46} {per_value:>11,.0f} {per_expression:>14,.0f}  {verdict}")
    print(f"slowest: {worst:,.0f} expression resolutions/s")


async def native_vs_v8(rounds: int = 400) -> None:
    print(f"\n{'expression':<58} {'native µs':>9} {'V8 µs':>8} {'ratio':>7}")
    async with Sandbox(workers=1) as sandbox:
        for code in NATIVE:
            program = compile_expression(code, SCOPE_NAMES)
            assert program is not None, code
            expected = await sandbox.evaluate_expression(code, SCOPE)
            assert program.evaluate(SCOPE) == expected, code
            native = 1e6 / rate(lambda p=program: p.evaluate(SCOPE), 0.3)
            for _ in range(50):  # warm: compiled in the worker, caches filled
                await sandbox.evaluate_expression(code, SCOPE)
            start = time.perf_counter()
            for _ in range(rounds):
                await sandbox.evaluate_expression(code, SCOPE)
            v8 = (time.perf_counter() - start) / rounds * 1e6
            print(f"{code:<58} {native:>9.2f} {v8:>8.1f} {v8 / native:>6.0f}x")


def ten_set_flow(value: str) -> str:
    lines = ["metadata: {name: Ten sets}", "nodes:"]
    for i in range(1, 11):
        nxt = f", next: {{default: n{i + 1}}}" if i < 10 else ""
        lines.append(f'  n{i}: {{type: set, params: {{values: {{n: "{value}"}}}}{nxt}}}')
    return "\n".join(lines) + "\n"


# The set flows measured through serve: the node's value expression -> the expected output n.
# `(0, input.n) + 1` is outside the native subset (the comma operator), so it costs what
# `input.n + 1` cost before native evaluation: one sandbox round trip per node.
SERVE_FLOWS = {"${input.n + 1}": 11, "${(0, input.n) + 1}": 11, "${input.n}": 1}


async def serve_flows(url: str, pid: int, seconds: float, rounds: int) -> None:
    import aiohttp
    from common import Result, drive
    from runs import ADMIN, LEVELS, tree_cpu_seconds

    def probe(pid: int) -> tuple[float, float] | None:
        """The server's own CPU seconds and its tree's (its own and its workers')."""
        tree = tree_cpu_seconds(pid)
        return None if tree is None else (tree[0], tree[0] + tree[1])

    async with aiohttp.ClientSession(url) as setup:
        login = await setup.post("/api/v1/login", json={"username": ADMIN[0], "password": ADMIN[1]})
        login.raise_for_status()
        headers = {"Authorization": f"Bearer {(await login.json())['token']}"}
        paths = {}
        for value in SERVE_FLOWS:
            created = await setup.post(
                "/api/v1/flows",
                data=ten_set_flow(value),
                headers={**headers, "content-type": "application/yaml"},
            )
            created.raise_for_status()
            paths[value] = f"/api/v1/flows/{(await created.json())['id']}/run?wait=30s"

    def runner(value: str) -> Any:
        async def run(session: aiohttp.ClientSession) -> None:
            async with session.post(paths[value], json={"input": {"n": 1}}) as response:
                body = await response.json()
                if response.status != 200 or body["status"] != "completed":
                    raise RuntimeError(f"run did not complete: {response.status} {body}")
                if body["output"] != {"n": SERVE_FLOWS[value]}:
                    raise RuntimeError(f"wrong output: {body['output']}")

        return run

    print(
        f"\n{'flow (10 set nodes)':<22} clients |   runs/s  p50 ms  p99 ms | cpu ms: server"
        " + workers"
    )
    for clients in LEVELS:
        results = {value: Result() for value in SERVE_FLOWS}
        main = dict.fromkeys(SERVE_FLOWS, 0.0)
        total = dict.fromkeys(SERVE_FLOWS, 0.0)
        for _ in range(rounds):  # interleaved, so a noisy neighbour hits every flow alike
            for value in SERVE_FLOWS:
                got = await drive(
                    url, headers, clients, seconds / rounds, runner(value), cpu=lambda: probe(pid)
                )
                results[value].add(got)
                if got.cpu:
                    main[value] += got.cpu[0]
                    total[value] += got.cpu[1]
        for value, result in results.items():
            per_run = 1000 / result.count
            print(
                f"{value:<22} {clients:>7} | {result.rps:8.1f} {result.pct(0.5):7.2f} "
                f"{result.pct(0.99):7.2f} | {main[value] * per_run:7.2f} "
                f"{max(0.0, total[value] - main[value]) * per_run:7.2f}",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve", action="store_true", help="also run the set flows via serve")
    parser.add_argument("--serve-only", action="store_true", help="only the serve part")
    parser.add_argument("--seconds", type=float, default=6.0, help="measured time a level")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds a level")
    parser.add_argument("--server-src", help="PYTHONPATH for the server (another checkout)")
    args = parser.parse_args()
    if not args.serve_only:
        paths()
        asyncio.run(native_vs_v8())
    if args.serve or args.serve_only:
        from runs import serve

        extra = {"FLOWRUNNER_STORAGE": "sqlite"}
        if args.server_src:
            extra["PYTHONPATH"] = str(Path(args.server_src).resolve())
        print(f"\nserver from {extra.get('PYTHONPATH', 'this checkout')}")
        with tempfile.TemporaryDirectory() as tmp, serve(Path(tmp), extra) as (url, pid):
            asyncio.run(serve_flows(url, pid, args.seconds, args.rounds))


if __name__ == "__main__":
    main()
