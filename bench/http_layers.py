"""The HTTP layers of the run route alone: what ``POST /api/v1/flows/{id}/run?wait=30s`` costs
besides the run.

Builds the real app (SQLite in a scratch dir, the middlewares, FastAPI's routing, dependency
solving and validation, Bearer authentication, metrics), creates the ``path`` flow of
``runs.py`` and runs it once for real; then the execution service answers ``start`` and
``wait`` at once with that finished run, and the app is called as ASGI in-process (no socket,
no uvicorn) ``--requests`` times per round. Prints the CPU µs per request (best and median of
``--rounds``) and the Python function calls per request: that count does not move with the
machine's load, so it compares two source trees even on a busy machine
(``PYTHONPATH=<other tree>/src python bench/http_layers.py``). ``--route healthz`` measures
``GET /healthz`` the same way.

    .venv/bin/python bench/http_layers.py [--requests 2000] [--rounds 9] [--route run|healthz]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
from cryptography.fernet import Fernet
from pydantic import SecretStr
from runs import ADMIN, FLOWS

from flowrunner.api import create_app
from flowrunner.config import Settings
from flowrunner.executions.service import Started


def bench_app(data_dir: Path) -> Any:
    """The real app over SQLite in ``data_dir`` (its lifespan entered by the caller)."""
    settings = Settings(
        storage="sqlite",
        data_dir=data_dir,
        database_url=f"sqlite:///{data_dir}/flowrunner.db",
        secret_keys=SecretStr(Fernet.generate_key().decode()),
        admin_username=ADMIN[0],
        admin_password=SecretStr(ADMIN[1]),
    )
    return create_app(settings)


async def _call(
    app: Any, headers: list[tuple[bytes, bytes]], method: str, path: str, query: bytes, body: bytes
) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "method": method,
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "headers": [(b"host", b"127.0.0.1:8000"), *headers],
        "state": {},
    }
    received = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # no disconnect while the app answers
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


def health_request(app: Any) -> Callable[[], Awaitable[int]]:
    return lambda: _call(app, [], "GET", "/healthz", b"", b"")


async def run_request(app: Any) -> Callable[[], Awaitable[int]]:
    """Log in, create the flow, run it once for real, then make the service answer at once."""
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://bench")
    login = await client.post("/api/v1/login", json={"username": ADMIN[0], "password": ADMIN[1]})
    token = f"Bearer {login.json()['token']}".encode()
    auth = {"Authorization": token.decode()}
    created = await client.post(
        "/api/v1/flows",
        content=FLOWS["path"][0],
        headers={**auth, "content-type": "application/yaml"},
    )
    path = f"/api/v1/flows/{created.json()['id']}/run"
    first = await client.post(path + "?wait=30s", json={"input": {"n": 0}}, headers=auth)
    if first.status_code != 200:
        raise SystemExit(f"the real run failed: {first.status_code} {first.text}")
    executions = app.state.executions
    account = (await client.get("/api/v1/accounts/me", headers=auth)).json()["id"]
    finished = await executions.get(account, first.json()["id"])

    async def start(*_args: Any, **_kwargs: Any) -> Started:
        return Started(finished, True)

    async def wait(*_args: Any, **_kwargs: Any) -> Any:
        return finished

    executions.start, executions.wait = start, wait
    body = json.dumps({"input": {"n": 0}}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"authorization", token),
        (b"accept", b"*/*"),
        (b"user-agent", b"bench/http_layers"),
    ]
    return lambda: _call(app, headers, "POST", path, b"wait=30s", body)


async def main(requests: int, rounds: int, route: str) -> None:
    with tempfile.TemporaryDirectory(prefix="flowrunner-bench-") as scratch:
        app = bench_app(Path(scratch))
        async with app.router.lifespan_context(app):
            call = await run_request(app) if route == "run" else health_request(app)
            for _ in range(300):  # warm: caches, the token cache, the metrics series
                status = await call()
                if status != 200:
                    raise SystemExit(f"{route}: answered {status}")
            calls = 0

            def profile(_frame: FrameType, event: str, _arg: Any) -> None:
                nonlocal calls
                if event in ("call", "c_call"):
                    calls += 1

            sys.setprofile(profile)
            for _ in range(200):
                await call()
            sys.setprofile(None)
            per_round = []
            for _ in range(rounds):
                started = time.process_time()
                for _ in range(requests):
                    await call()
                per_round.append((time.process_time() - started) / requests * 1e6)
            print(
                f"{route}: cpu µs a request best {min(per_round):.1f}"
                f" median {statistics.median(per_round):.1f}"
                f" | python calls a request {calls / 200:.0f}"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--route", choices=("run", "healthz"), default="run")
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.rounds, args.route))
