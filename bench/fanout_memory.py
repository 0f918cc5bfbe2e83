"""Server memory for the batch fan-out that used to take a server down, with and without caps.

The flow: two batch nodes in a row over a 1,000-item list (about 5 KB of input), each item
returning its whole input. The second node's output is a thousand references to one 5 MB
list in memory and five gigabytes as JSON. For each mode a fresh ``flowrunner serve``
(SQLite, scratch data dir) runs it once; the benchmark samples the server's resident set
(``/proc/<pid>/status``) every 20 ms and prints its peak (VmHWM), the run's status and the
seconds until the run ended.

``capped`` uses the default caps (8 MiB node output). ``uncapped`` raises every cap to 1 TiB,
which is how the server behaved before the caps existed; since that run would grow without
end (17.9 GB once), the benchmark kills the server when its RSS passes ``--guard-mb`` and
reports the time it took to get there.

    .venv/bin/python bench/fanout_memory.py [--guard-mb 2048] [--modes capped,uncapped]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from common import free_port, server
from cryptography.fernet import Fernet

ADMIN = ("bench", "bench-password-1")
FAN_OUT = """metadata: {name: Fan-out}
nodes:
  first:
    type: log
    params: {message: "item ${index}"}
    batch: {items: "${input.items}"}
    next: {default: second}
  second:
    type: log
    params: {message: "item ${index}"}
    batch: {items: "${input}", strategy: parallel}
"""
RUN_INPUT = {"items": [f"i{n:03}" for n in range(1000)]}
TIB = str(1 << 40)
MODES = {
    "capped": {},
    "uncapped": {
        "FLOWRUNNER_MAX_NODE_OUTPUT_BYTES": TIB,
        "FLOWRUNNER_MAX_SHARED_BYTES": TIB,
        "FLOWRUNNER_MAX_CHECKPOINT_BYTES": TIB,
    },
}


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _poll(client: httpx.Client, execution_id: str, ended: list[str]) -> None:
    """Append the run's final status (and error code) to ``ended`` once it has one."""
    while True:
        try:
            run = client.get(f"/api/v1/executions/{execution_id}", timeout=600).json()
        except httpx.HTTPError:
            return  # the server was killed at the guard
        if run["status"] in ("completed", "failed", "canceled"):
            code = (run.get("error") or {}).get("code", "")
            ended.append(f"{run['status']} {code}".strip())
            return
        time.sleep(0.25)


def measure(mode: str, guard_kb: int) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {
            "FLOWRUNNER_DATA_DIR": tmp,
            "FLOWRUNNER_SECRET_KEYS": Fernet.generate_key().decode(),
            "FLOWRUNNER_ADMIN_USERNAME": ADMIN[0],
            "FLOWRUNNER_ADMIN_PASSWORD": ADMIN[1],
            **MODES[mode],
        }
        argv = [sys.executable, "-m", "flowrunner", "serve", "--port", str(port)]
        argv += ["--log-level", "warning"]
        with server(argv, env, f"{url}/healthz", log=Path(tmp) / "server.log") as process:
            idle_kb = status_kb(process.pid, "VmRSS")
            with httpx.Client(base_url=url, timeout=30) as client:
                login = client.post(
                    "/api/v1/login", json={"username": ADMIN[0], "password": ADMIN[1]}
                )
                client.headers["Authorization"] = f"Bearer {login.json()['token']}"
                flow = client.post(
                    "/api/v1/flows", content=FAN_OUT, headers={"content-type": "application/yaml"}
                ).json()
                started = time.perf_counter()
                run = client.post(f"/api/v1/flows/{flow['id']}/run", json={"input": RUN_INPUT})
                execution_id = run.json()["execution_id"]
                # The status is polled from a thread: an uncapped run blocks the server's event
                # loop for seconds at a time, and the RSS guard must keep sampling meanwhile.
                ended: list[str] = []
                poller = threading.Thread(
                    target=_poll, args=(client, execution_id, ended), daemon=True
                )
                poller.start()
                outcome, peak_kb = "still running after 300 s", 0
                while time.perf_counter() - started < 300:
                    rss = status_kb(process.pid, "VmRSS")
                    if rss > guard_kb:
                        peak_kb = status_kb(process.pid, "VmHWM")
                        process.kill()
                        process.wait()
                        outcome = f"killed at the {guard_kb // 1024} MB guard"
                        break
                    if ended:
                        peak_kb = status_kb(process.pid, "VmHWM")
                        outcome = ended[0]
                        break
                    time.sleep(0.02)
                seconds = time.perf_counter() - started
                if not peak_kb:
                    peak_kb = status_kb(process.pid, "VmHWM")
    return (
        f"{mode:<9} idle {idle_kb / 1024:7.0f} MB   peak {peak_kb / 1024:7.0f} MB   "
        f"{seconds:6.1f} s   {outcome}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--guard-mb", type=int, default=2048)
    parser.add_argument("--modes", default="capped,uncapped")
    args = parser.parse_args()
    for mode in args.modes.split(","):
        print(measure(mode, args.guard_mb * 1024), flush=True)


if __name__ == "__main__":
    main()
