"""Micro-benchmark of the API's input guard: what it adds to a request, and per body shape.

Prints the guard's check of JSON bodies of typical and worst-case shapes beside a plain
``json.loads`` of the same bytes (the decode every JSON route does anyway), and the
middleware's cost per request against a bare ASGI app. No target: the guard should stay
well under a decode on every shape.
Run: .venv/bin/python bench/input_guard.py
"""

from __future__ import annotations

import asyncio
import json
import time
import timeit
from collections.abc import Callable
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from flowrunner.api.input_guard import InputGuardMiddleware, check_raw

DEPTH = 64


def nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


def shapes() -> dict[str, bytes]:
    flow = "metadata:\n  name: Big\nnodes:\n" + "".join(
        f"  n{i}:\n    type: set\n    params:\n      values: {{v: {i}}}\n" for i in range(9000)
    )
    rows = [{"a": [1, 2, {"b": "c"}]} for _ in range(5000)]
    return {
        "run body": json.dumps({"input": {"x": 1, "items": [{"sku": "a", "qty": 2}]}}).encode(),
        "flow as JSON": json.dumps({"content": flow}).encode(),
        "run input, 5000 rows": json.dumps({"input": {"rows": rows}}).encode(),
        "1000 lists 62 deep": json.dumps({"input": [nested(61)] * 1000}).encode(),
        "escaped quotes": b'["' + b'\\"' * 400_000 + b'"]',
    }


def best_us(call: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(call, number=number, repeat=5)) / number * 1e6


async def _bare(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def per_request(body: bytes, requests: int = 20_000) -> dict[str, float]:
    scope: Scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/v1/flows/x/run",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json")],
    }

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        pass

    apps = {"bare app": _bare, "guarded app": InputGuardMiddleware(_bare, max_depth=DEPTH)}
    result: dict[str, float] = {}
    for name, app in apps.items():
        times = []
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(requests):
                await app(dict(scope), receive, send)
            times.append((time.perf_counter() - started) / requests)
        result[name] = min(times) * 1e6
    return result


def main() -> None:
    print(f"{'body':<24} {'KiB':>6} {'guard us':>10} {'json.loads us':>14}")
    for name, raw in shapes().items():
        number = 2000 if len(raw) < 1000 else 10
        guard = best_us(lambda raw=raw: check_raw(raw, max_depth=DEPTH, loc=("body",)), number)
        decode = best_us(lambda raw=raw: json.loads(raw), number)
        print(f"{name:<24} {len(raw) / 1024:>6.0f} {guard:>10.0f} {decode:>14.0f}")
    small = shapes()["run body"]
    for name, micros in asyncio.run(per_request(small)).items():
        print(f"{name}: {micros:.1f} us per small JSON request")


if __name__ == "__main__":
    main()
