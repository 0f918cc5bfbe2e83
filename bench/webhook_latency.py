"""Delivery latency of outbound webhooks: from a run's end to the receiver, p50/p99.

Starts a real ``flowrunner serve`` (SQLite in a scratch data dir, default settings plus
``FLOWRUNNER_HTTP_ALLOW=127.0.0.1`` for the receiver) and an HTTP receiver on loopback,
subscribes an endpoint to ``execution.completed``, then runs a one-node flow ``--runs`` times,
one after the other (an idle server: the latency of the path, not of a queue). For each
delivery the latency is the receiver's arrival time minus the run's ``finished_at`` (the
moment the status change and its outbox entry committed; same machine, same clock). The
goal (issue 15) is p99 <= 20 ms on an idle loopback.

    .venv/bin/python bench/webhook_latency.py [--runs 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import aiohttp
from common import free_port, server
from cryptography.fernet import Fernet

ADMIN = ("bench", "bench-password-1")
FLOW = "metadata: {name: Tiny}\nnodes:\n  a: {type: set, params: {values: {x: 1}}}\n"


class Receiver:
    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}  # execution id -> latency seconds
        self.done = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                arrived = time.time()
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()
                data = json.loads(body)["data"]
                finished = datetime.fromisoformat(data["finished_at"]).timestamp()
                with receiver.done:
                    receiver.arrivals[data["execution_id"]] = arrived - finished
                    receiver.done.notify_all()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/hook"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def wait(self, execution_id: str) -> float:
        with self.done:
            self.done.wait_for(lambda: execution_id in self.arrivals, 30)
            return self.arrivals[execution_id]


async def measure(url: str, receiver: Receiver, runs: int) -> list[float]:
    async with aiohttp.ClientSession(url) as http:
        login = await http.post("/api/v1/login", json={"username": ADMIN[0], "password": ADMIN[1]})
        headers = {"Authorization": f"Bearer {(await login.json())['token']}"}
        made = await http.post(
            "/api/v1/webhooks",
            json={"url": receiver.url, "events": ["execution.completed"]},
            headers=headers,
        )
        assert made.status == 201, await made.text()
        flow = await http.post(
            "/api/v1/flows", data=FLOW, headers={**headers, "content-type": "application/yaml"}
        )
        flow_id = (await flow.json())["id"]
        latencies = []
        for i in range(runs + 10):
            started = await http.post(f"/api/v1/flows/{flow_id}/run?wait=30s", headers=headers)
            execution_id = (await started.json())["id"]
            latency = await asyncio.to_thread(receiver.wait, execution_id)
            if i >= 10:  # the first few warm up connections and caches
                latencies.append(latency * 1000)
        return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    runs = parser.parse_args().runs
    receiver = Receiver()
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = Path(scratch)
        port = free_port()
        env = {
            "FLOWRUNNER_DATA_DIR": str(data_dir),
            "FLOWRUNNER_SECRET_KEYS": Fernet.generate_key().decode(),
            "FLOWRUNNER_ADMIN_USERNAME": ADMIN[0],
            "FLOWRUNNER_ADMIN_PASSWORD": ADMIN[1],
            "FLOWRUNNER_HTTP_ALLOW": "127.0.0.1",
        }
        argv = [sys.executable, "-m", "flowrunner", "serve", "--port", str(port)]
        argv += ["--log-level", "warning"]
        url = f"http://127.0.0.1:{port}"
        with server(argv, env, f"{url}/healthz", log=data_dir / "server.log"):
            latencies = asyncio.run(measure(url, receiver, runs))
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(f"webhook delivery latency, run end -> receiver, {len(latencies)} runs one at a time")
    print(
        f"p50 {statistics.median(latencies):.2f} ms  p99 {p99:.2f} ms  "
        f"max {latencies[-1]:.2f} ms  (goal: p99 <= 20 ms on an idle loopback)"
    )


if __name__ == "__main__":
    main()
