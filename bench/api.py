"""HTTP API throughput and latency, against a bare FastAPI hello-world measured in the same run.

Starts two real servers on loopback, each a uvicorn process with one worker and the same
logging: ``flowrunner serve`` (SQLite in a scratch data dir) and a hello-world FastAPI app.
Each scenario (hello-world GET, flow create, flow get, flow list) is driven by
``--concurrency`` httpx async clients (Bearer token auth) for ``--seconds`` in total, split
into ``--rounds`` interleaved rounds each after a short warm-up, so drift on a noisy machine
hits every scenario alike. Prints requests/s, p50 and p99, and the ratios to hello-world.

    .venv/bin/python bench/api.py [--seconds 8] [--rounds 4] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

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


Call = Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]


@dataclass
class Result:
    name: str
    count: int
    seconds: float
    latencies: list[float]

    @property
    def rps(self) -> float:
        return self.count / self.seconds

    def pct(self, q: float) -> float:
        """Latency percentile in milliseconds."""
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def hello_app() -> None:
    """The baseline: the smallest FastAPI app, served like flowrunner (uvicorn, 1 worker)."""
    import uvicorn
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        return {"message": "hello"}

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def server(argv: list[str], env: dict[str, str], health: str) -> Iterator[None]:
    process = subprocess.Popen(argv, env={**os.environ, **env}, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise SystemExit(f"server {argv} exited with {process.returncode}")
            try:
                if httpx.get(health, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"server {argv} did not start") from None
                time.sleep(0.1)
        yield
    finally:
        process.terminate()
        process.wait(timeout=15)


async def drive(
    name: str,
    client: httpx.AsyncClient,
    call: Call,
    *,
    seconds: float,
    concurrency: int,
    expect: int = 200,
) -> Result:
    latencies: list[float] = []
    counter = 0

    async def worker(stop_at: float, record: bool) -> None:
        nonlocal counter
        while time.perf_counter() < stop_at:
            counter += 1
            started = time.perf_counter()
            response = await call(client, counter)
            if response.status_code != expect:
                raise SystemExit(f"{name}: HTTP {response.status_code} {response.text[:200]}")
            if record:
                latencies.append(time.perf_counter() - started)

    warm_until = time.perf_counter() + min(0.5, seconds / 4)
    await asyncio.gather(*(worker(warm_until, False) for _ in range(concurrency)))
    begin = time.perf_counter()
    await asyncio.gather(*(worker(begin + seconds, True) for _ in range(concurrency)))
    return Result(name, len(latencies), time.perf_counter() - begin, latencies)


async def create_flow(client: httpx.AsyncClient, n: int) -> httpx.Response:
    return await client.post(
        "/api/v1/flows", content=FLOW.format(n=n), headers={"content-type": "application/yaml"}
    )


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
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with (
            httpx.AsyncClient(base_url=api, limits=limits, timeout=30) as client,
            httpx.AsyncClient(base_url=hello, limits=limits, timeout=30) as baseline,
        ):
            login = await client.post(
                "/api/v1/login", json={"username": ADMIN[0], "password": ADMIN[1]}
            )
            client.headers["Authorization"] = f"Bearer {login.json()['token']}"
            first = await client.post(
                "/api/v1/flows",
                content=FLOW.format(n=0),
                headers={"content-type": "application/yaml"},
            )
            flow_id = first.json()["id"]
            scenarios: list[tuple[str, httpx.AsyncClient, Call, int]] = [
                ("hello", baseline, lambda c, n: c.get("/hello"), 200),
                ("flow create", client, create_flow, 201),
                ("flow get", client, lambda c, n: c.get(f"/api/v1/flows/{flow_id}"), 200),
                ("flow list (20)", client, lambda c, n: c.get("/api/v1/flows?limit=20"), 200),
            ]
            totals: dict[str, Result] = {}
            # Rounds interleave the scenarios so a noisy neighbour hits every one alike.
            for _ in range(rounds):
                for name, target, call, expect in scenarios:
                    r = await drive(
                        name,
                        target,
                        call,
                        seconds=seconds / rounds,
                        concurrency=concurrency,
                        expect=expect,
                    )
                    total = totals.setdefault(name, Result(name, 0, 0.0, []))
                    total.count += r.count
                    total.seconds += r.seconds
                    total.latencies += r.latencies
    report(totals, concurrency, rounds)


def report(totals: dict[str, Result], concurrency: int, rounds: int) -> None:
    hello = totals["hello"]
    print(
        f"concurrency {concurrency}, {rounds} interleaved rounds, one uvicorn worker each, SQLite"
    )
    print(f"{'scenario':<16}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}  req/s vs hello, p50 vs hello")
    for r in totals.values():
        ratio = f"{r.rps / hello.rps:.2f}x, {r.pct(0.5) / hello.pct(0.5):.2f}x"
        print(f"{r.name:<16}{r.rps:>9.0f}{r.pct(0.5):>9.2f}{r.pct(0.99):>9.2f}  {ratio}")


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
