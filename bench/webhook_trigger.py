"""Sync webhook trigger → 10-node flow → response, against the same server's ``/healthz``.

Starts one real ``flowrunner serve`` (uvicorn, one worker, SQLite in a scratch data dir, the
README's defaults) and stores a flow whose webhook trigger answers synchronously: 9 ``set``
nodes then a ``respond`` node (the shape of n8n's "webhook → 10 Set nodes → Respond to
Webhook" benchmark). Each connection count (1, 8, 32 by default) drives keep-alive aiohttp
clients for ``--seconds`` in total, split into ``--rounds`` interleaved rounds, against the
hook and against ``/healthz`` of the same process, and prints requests/s, p50, p99 and the
server's CPU time per request (user + system, read from /proc: on a machine shared with other
jobs, req/s says how busy the machine was, CPU ms per request what a request costs).
Every hook request is a full run: queued, leased, 10 nodes executed and recorded, answered.

``--profile FILE`` records the server under py-spy (if installed) for the whole run and writes
a flame graph there (an SVG; collapsed stacks for a ``.txt`` name).

    .venv/bin/python bench/webhook_trigger.py [--seconds 8] [--rounds 2] [--connections 1,8,32]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import aiohttp
from common import Call, Result, cpu_seconds, drive, free_port, server

ADMIN = ("bench", "bench-password-1")
N8N = {1: 69, 8: 75, 32: 77}
"""n8n 2.8.4 on this kind of machine, same flow shape (issue 15's reference)."""


def own_cpu(pid: int) -> tuple[float] | None:
    """The server process's CPU seconds so far, as ``drive``'s probe."""
    spent = cpu_seconds(pid)
    return None if spent is None else (spent,)


def flow() -> str:
    nodes = []
    for i in range(1, 10):
        nodes.append(
            f"  set{i}:\n    type: set\n"
            f'    params: {{values: {{step{i}: "${{input.body.n}}"}}}}\n'
            f"    next: {{default: {'set' + str(i + 1) if i < 9 else 'answer'}}}\n"
        )
    nodes.append(
        "  answer:\n    type: respond\n"
        '    params: {status: 200, body: {ok: true, n: "${shared.step9}"}}\n'
    )
    return (
        "metadata: {name: Webhook bench}\n"
        "triggers:\n  - webhook: {response: sync, rate_limit: 100000000}\n"
        "nodes:\n" + "".join(nodes)
    )


async def run(
    seconds: float,
    rounds: int,
    connections: list[int],
    profile: str | None = None,
    only: str | None = None,
) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="flowrunner-bench-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "FLOWRUNNER_DATA_DIR": str(data_dir),
        "FLOWRUNNER_STORAGE": "sqlite",
        "FLOWRUNNER_ADMIN_USERNAME": ADMIN[0],
        "FLOWRUNNER_ADMIN_PASSWORD": ADMIN[1],
        "FLOWRUNNER_EXECUTOR_CONCURRENCY": "64",
    }
    serve = [sys.executable, "-m", "flowrunner", "serve", "--port", str(port)]
    # The default log level, as the README starts the server (access lines included).
    with server(serve, env, f"{url}/healthz") as process:
        spy = None
        if profile:
            spy_bin = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
            # A .txt name: collapsed stacks (for grep and flamegraph.pl); else an SVG.
            kind = ["--format", "raw"] if profile.endswith(".txt") else []
            spy = await asyncio.create_subprocess_exec(
                *[spy_bin, "record", "-p", str(process.pid), "-o", profile, "-r", "200", *kind],
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
        async with aiohttp.ClientSession(url) as setup:
            login = await setup.post(
                "/api/v1/login", json={"username": ADMIN[0], "password": ADMIN[1]}
            )
            auth = {"Authorization": f"Bearer {(await login.json())['token']}"}
            made = await setup.post(
                "/api/v1/flows", data=flow(), headers={**auth, "content-type": "application/yaml"}
            )
            flow_id = (await made.json())["id"]
            listed = await setup.get("/api/v1/triggers", params={"flow_id": flow_id}, headers=auth)
            hook = (await listed.json())["items"][0]["url"]

        def call(method: str, path: str, body: bytes | None, expect: int = 200) -> Call:
            headers = {"content-type": "application/json"} if body else {}

            async def send(session: aiohttp.ClientSession) -> None:
                async with session.request(method, path, data=body, headers=headers) as answer:
                    if answer.status != expect:
                        text = (await answer.text())[:200]
                        raise SystemExit(f"{method} {path}: HTTP {answer.status} {text}")
                    await answer.read()

            return send

        run_path = f"/api/v1/flows/{flow_id}/run?wait=30s"
        scenarios = [
            ("healthz", {}, call("GET", "/healthz", None)),
            ("webhook → 10 nodes", {}, call("POST", hook, b'{"n": 7}')),
            # The same run started over the authenticated API: what the trigger adds or saves.
            ("API run ?wait", auth, call("POST", run_path, b'{"input": {"body": {"n": 7}}}')),
        ]
        if only:  # e.g. a profile of the hook path alone
            scenarios = [s for s in scenarios if only in s[0]]
        totals: dict[tuple[str, int], Result] = {}
        cpu: dict[tuple[str, int], float] = {}
        pid = process.pid

        def probe() -> tuple[float] | None:
            return own_cpu(pid)

        for _ in range(rounds):
            for count in connections:
                for name, headers, send in scenarios:
                    got = await drive(url, headers, count, seconds / rounds, send, cpu=probe)
                    used = got.cpu[0] if got.cpu else 0.0
                    totals.setdefault((name, count), Result()).add(got)
                    cpu[name, count] = cpu.get((name, count), 0.0) + used
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            await spy.wait()
    report(totals, cpu, connections, rounds)


def report(
    totals: dict[tuple[str, int], Result],
    cpu: dict[tuple[str, int], float],
    connections: list[int],
    rounds: int,
) -> None:
    print(f"{rounds} interleaved rounds, one uvicorn worker, SQLite, in-process executor")
    print(
        f"{'scenario':<22}{'conns':>6}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'cpu ms':>8}"
        "  vs healthz, vs n8n"
    )
    for count in connections:
        health = totals.get(("healthz", count))
        for name in ("healthz", "webhook → 10 nodes", "API run ?wait"):
            if (name, count) not in totals:
                continue
            r = totals[(name, count)]
            versus = f"{r.rps / health.rps:.2f}x" if health else "-"
            if name == "webhook → 10 nodes" and count in N8N:
                versus += f", {r.rps / N8N[count]:.1f}x n8n ({N8N[count]} req/s)"
            per = 1000 * cpu[name, count] / r.count if r.count else 0.0
            print(
                f"{name:<22}{count:>6}{r.rps:>9.0f}{r.pct(0.5):>9.2f}{r.pct(0.99):>9.2f}"
                f"{per:>8.2f}  {versus}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="measured time per scenario")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds")
    parser.add_argument("--connections", default="1,8,32", help="comma-separated counts")
    parser.add_argument("--profile", help="write a py-spy flame graph (SVG) of the server here")
    parser.add_argument("--only", help="only the scenarios whose name contains this (webhook)")
    args = parser.parse_args()
    counts = [int(c) for c in args.connections.split(",")]
    asyncio.run(run(args.seconds, args.rounds, counts, args.profile, args.only))


if __name__ == "__main__":
    main()
