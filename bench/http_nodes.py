"""Benchmark of http.request: a flow of 10 nodes against a local server, vs bare httpx.

The server is uvicorn with a raw ASGI app answering a small JSON body, in its own process
(started here, on a free loopback port). Measured in the same run, alternating rounds:

- bare: the same 10 GETs per round on one pooled ``httpx.AsyncClient``, nothing else;
- flow: a compiled flow of 10 ``http.request`` nodes (each reads the previous node's output
  in its URL), run to the end each round: params resolved, guard, request, body read and
  parsed, output built, shared.result/http_result, routing.

Prints runs/s of the flow, the time per node, and the per-node overhead over the bare call.
Not a test: numbers depend on the machine. Run: .venv/bin/python bench/http_nodes.py
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import httpx

from flowrunner.definition import compile_flow, load_flow

NODES = 10
ROUNDS = 300
BODY = b'{"ok": true, "items": [1, 2, 3], "name": "flowrunner"}'


async def app(scope: dict, receive, send) -> None:  # type: ignore[no-untyped-def, type-arg]
    while (await receive()).get("more_body"):
        pass
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": BODY})


def serve(port: int) -> None:
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                lifespan="off", ws="none", http="h11", interface="asgi3")  # fmt: skip


def flow_text(base: str) -> str:
    lines = ["metadata: {name: Ten calls}", "nodes:"]
    for i in range(NODES):
        url = f"{base}/n{i}" if i == 0 else f"{base}/n{i}?prev=${{input.status_code}}"
        nxt = f", next: {{default: n{i + 1}}}" if i < NODES - 1 else ""
        lines.append(f'  n{i}: {{type: http.request, params: {{url: "{url}"}}{nxt}}}')
    return "\n".join(lines) + "\n"


async def measure(base: str) -> None:
    os.environ["FLOWRUNNER_HTTP_ALLOW_PRIVATE"] = "true"
    flow = compile_flow(load_flow(flow_text(base)))
    bare_s = flow_s = 0.0
    async with httpx.AsyncClient(trust_env=False) as client:
        for _ in range(20):  # warm up both: connections, caches
            await flow.run({})
            await client.get(f"{base}/warm")
        for _ in range(ROUNDS):
            start = time.perf_counter()
            for i in range(NODES):
                response = await client.get(f"{base}/n{i}?prev=200")
                response.json()
            bare_s += time.perf_counter() - start
            start = time.perf_counter()
            result = await flow.run({})
            flow_s += time.perf_counter() - start
            assert result.results[f"n{NODES - 1}"]["status_code"] == 200
    per_bare = bare_s / ROUNDS / NODES * 1000
    per_node = flow_s / ROUNDS / NODES * 1000
    print(f"{ROUNDS} runs of a flow of {NODES} http.request nodes against a local uvicorn")
    print(f"  flow:  {ROUNDS / flow_s:8.1f} runs/s   {per_node:6.3f} ms per node")
    print(f"  bare httpx, same requests:     {per_bare:6.3f} ms per request")
    print(f"  overhead per node: {per_node - per_bare:6.3f} ms ({per_node / per_bare:.2f}x)")


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]))
        return
    sys.path.insert(0, os.path.dirname(__file__))
    from common import free_port  # type: ignore[import-not-found]

    port = free_port()
    process = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/up", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        asyncio.run(measure(base))
    finally:
        process.terminate()
        process.wait(10)


if __name__ == "__main__":
    main()
