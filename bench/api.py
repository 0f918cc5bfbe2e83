"""HTTP API throughput and latency, against a bare FastAPI hello-world measured in the same run.

Starts two real servers on loopback, each a uvicorn process with one worker and the same
logging: ``flowrunner serve`` (SQLite in a scratch data dir) and a hello-world FastAPI app.
Each scenario (hello-world GET, flow create, flow get, flow list) is driven by
``--concurrency`` keep-alive aiohttp clients (Bearer token auth) for ``--seconds`` in total, split
into ``--rounds`` interleaved rounds each after a short warm-up, so drift on a noisy machine
hits every scenario alike. Prints requests/s, p50 and p99, and the ratios to hello-world.

    .venv/bin/python bench/api.py [--seconds 8] [--rounds 4] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import tempfile
from pathlib import Path

import aiohttp
from common import Call, Result, drive, free_port, server

ADMIN = ("bench", "bench-password-1")
FLOW = """metadata:
  name: Bench {n}
  description: A flow created by bench/api.py
nodes:
  greet:
    type: set
    params: {{values: {{greeting: "Hello, ${{input.name}}!"}}}}
    next: {{default: done}}
  done:
    type: log
    params: {{message: "${{shared.greeting}}"}}
"""


def hello_app() -> None:
    """The baseline: the smallest FastAPI app, served like flowrunner (uvicorn, 1 worker)."""
    import uvicorn
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        return {"message": "hello"}

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")


async def run(seconds: float, concurrency: int, rounds: int) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="flowrunner-bench-"))
    api_port, hello_port = free_port(), free_port()
    api, hello = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{hello_port}"
    env = {
        "FLOWRUNNER_DATA_DIR": str(data_dir),
        "FLOWRUNNER_STORAGE": "sqlite",
        "FLOWRUNNER_ADMIN_USERNAME": ADMIN[0],
        "FLOWRUNNER_ADMIN_PASSWORD": ADMIN[1],
    }
    serve = [sys.executable, "-m", "flowrunner", "serve", "--port", str(api_port)]
    with (
        server([*serve, "--log-level", "warning"], env, f"{api}/healthz"),
        server([sys.executable, __file__, "--hello", str(hello_port)], {}, f"{hello}/hello"),
    ):
        async with aiohttp.ClientSession(api) as setup:
            login = await setup.post(
                "/api/v1/login", json={"username": ADMIN[0], "password": ADMIN[1]}
            )
            headers = {"Authorization": f"Bearer {(await login.json())['token']}"}
            first = await setup.post(
                "/api/v1/flows",
                data=FLOW.format(n=0),
                headers={**headers, "content-type": "application/yaml"},
            )
            flow_id = (await first.json())["id"]
        numbers = itertools.count(1)

        def call(method: str, path: str, expect: int, yaml: bool = False) -> Call:
            async def send(session: aiohttp.ClientSession) -> None:
                body = FLOW.format(n=next(numbers)) if yaml else None
                extra = {"content-type": "application/yaml"} if yaml else {}
                async with session.request(method, path, data=body, headers=extra) as response:
                    if response.status != expect:
                        text = (await response.text())[:200]
                        raise SystemExit(f"{method} {path}: HTTP {response.status} {text}")
                    await response.read()

            return send

        scenarios: list[tuple[str, str, dict[str, str], Call]] = [
            ("hello", hello, {}, call("GET", "/hello", 200)),
            ("flow create", api, headers, call("POST", "/api/v1/flows", 201, yaml=True)),
            ("flow get", api, headers, call("GET", f"/api/v1/flows/{flow_id}", 200)),
            ("flow list (20)", api, headers, call("GET", "/api/v1/flows?limit=20", 200)),
        ]
        totals: dict[str, Result] = {}
        # Rounds interleave the scenarios so a noisy neighbour hits every one alike.
        for _ in range(rounds):
            for name, url, auth, send in scenarios:
                got = await drive(url, auth, concurrency, seconds / rounds, send)
                totals.setdefault(name, Result()).add(got)
    report(totals, concurrency, rounds)


def report(totals: dict[str, Result], concurrency: int, rounds: int) -> None:
    hello = totals["hello"]
    print(
        f"concurrency {concurrency}, {rounds} interleaved rounds, one uvicorn worker each, SQLite"
    )
    print(f"{'scenario':<16}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}  req/s vs hello, p50 vs hello")
    for name, r in totals.items():
        ratio = f"{r.rps / hello.rps:.2f}x, {r.pct(0.5) / hello.pct(0.5):.2f}x"
        print(f"{name:<16}{r.rps:>9.0f}{r.pct(0.5):>9.2f}{r.pct(0.99):>9.2f}  {ratio}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--hello":
        hello_app()
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="measured time per scenario")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    args = parser.parse_args()
    asyncio.run(run(args.seconds, args.concurrency, args.rounds))


if __name__ == "__main__":
    main()
