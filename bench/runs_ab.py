"""Two code bases side by side: the flows of ``runs.py`` through two servers at once.

Starts one ``flowrunner serve`` from ``--base-src`` (another checkout's ``src``, e.g. the
main branch) and one from this checkout, both on SQLite in scratch directories (or, with
``--backend postgres``, each on its own scratch database of the server
``FLOWRUNNER_BENCH_POSTGRES_URL`` or ``FLOWRUNNER_TEST_POSTGRES_URL`` names), both up for
the whole measurement. Then, for ``--rounds`` rounds, drives each flow at each client count
against one server and then the other (the order swapped every round), ``--seconds`` each,
so a noisy neighbour hits both alike. Prints, per flow and client count, the median over the
rounds of each server's runs/s and main-process CPU ms per run, and their ratios, with the
load average. Every answer is checked as in ``runs.py``.

    .venv/bin/python bench/runs_ab.py --base-src ../main/src [--flows path,set]
        [--clients 1,8] [--seconds 3] [--rounds 5] [--backend sqlite|postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
from contextlib import ExitStack
from pathlib import Path

import aiohttp
from common import drive
from runs import FLOWS, postgres_database, prepare, serve, tree_cpu_seconds


async def batch(
    url: str, pid: int, headers: dict[str, str], path: str, flow: str, clients: int, secs: float
) -> tuple[float, float]:
    """runs/s and main-process CPU ms per run of one batch."""
    expected = FLOWS[flow][1]

    async def run(session: aiohttp.ClientSession) -> None:
        async with session.post(path, json={"input": {"n": 0}}) as response:
            body = await response.json()
            if response.status != 200 or body["output"] != expected:
                raise RuntimeError(f"wrong answer: {response.status} {body}")

    result = await drive(url, headers, clients, secs, run, cpu=lambda: tree_cpu_seconds(pid))
    main_ms = result.cpu_ms(0)
    if main_ms is None:
        raise SystemExit("needs Linux /proc")
    return result.rps, main_ms


async def compare(
    servers: dict[str, tuple[str, int]],
    flows: list[str],
    levels: list[int],
    secs: float,
    rounds: int,
) -> None:
    prepared = {name: await prepare(url, flows) for name, (url, _) in servers.items()}
    names = list(servers)
    for flow in flows:
        for clients in levels:
            got: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
            loads = []
            for r in range(rounds):
                for name in names if r % 2 == 0 else reversed(names):
                    url, pid = servers[name]
                    headers, paths = prepared[name]
                    got[name].append(
                        await batch(url, pid, headers, paths[flow], flow, clients, secs)
                    )
                loads.append(os.getloadavg()[0])
            rps = {n: statistics.median(x[0] for x in got[n]) for n in names}
            cpu = {n: statistics.median(x[1] for x in got[n]) for n in names}
            a, b = names
            print(
                f"{flow:5} {clients:>3} | runs/s {rps[a]:7.1f} {rps[b]:7.1f}"
                f" ({rps[b] / rps[a]:4.2f}x)"
                f" | cpu ms/run {cpu[a]:5.2f} {cpu[b]:5.2f} ({cpu[b] / cpu[a]:4.2f}x)"
                f" | load {min(loads):.1f}-{max(loads):.1f}",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base-src", required=True, help="the other checkout's src (before)")
    parser.add_argument("--flows", default="path,set")
    parser.add_argument("--clients", default="1,8")
    parser.add_argument("--seconds", type=float, default=3.0, help="one batch")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()
    flows = args.flows.split(",")
    if unknown := set(flows) - set(FLOWS):
        parser.error(f"unknown flows: {', '.join(sorted(unknown))}")
    pg = os.environ.get("FLOWRUNNER_BENCH_POSTGRES_URL") or os.environ.get(
        "FLOWRUNNER_TEST_POSTGRES_URL"
    )
    if args.backend == "postgres" and not pg:
        parser.error("--backend postgres: set FLOWRUNNER_BENCH_POSTGRES_URL")
    here = str(Path(__file__).resolve().parent.parent / "src")
    sources = {"before": str(Path(args.base_src).resolve()), "after": here}
    print(f"before: {sources['before']}\nafter:  {sources['after']}")
    print("flow  clients | runs/s before after | main cpu ms/run before after | load average")
    with ExitStack() as stack:
        servers = {}
        for name, src in sources.items():
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            env = {"FLOWRUNNER_STORAGE": args.backend, "PYTHONPATH": src}
            if pg and args.backend == "postgres":
                # Two databases (named after this process), so the two servers cannot collide.
                env["FLOWRUNNER_DATABASE_URL"] = stack.enter_context(postgres_database(pg, name))
            servers[name] = stack.enter_context(serve(tmp, env))
        asyncio.run(
            compare(
                servers, flows, [int(c) for c in args.clients.split(",")], args.seconds, args.rounds
            )
        )


if __name__ == "__main__":
    main()
