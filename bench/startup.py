"""Start-up and idle footprint: ``flowrunner --help``, ``serve`` up to its first ``/healthz``,
and the server's resident memory idle, after its first script and after load.

* ``--help``: wall and CPU seconds of the whole process (median of ``--runs``).
* ``serve``: wall and CPU seconds from the process start to the first 200 from
  ``/healthz`` (SQLite in a scratch data dir; median of ``--runs``), then the server's RSS
  idle, after one run of a one-node ``transform`` flow (the sandbox workers start on demand,
  and their RSS is printed beside), and after ``--load`` such runs. With
  ``FLOWRUNNER_SCRIPT_WORKER_IDLE_SECONDS`` (``--idle``) the workers are closed again once
  idle: the last line is after that wait.

CPU is read from ``/proc`` (Linux); on a busy machine wall time says more about the
neighbours than about Flowrunner, CPU time does not.

Each round also starts ``bench/bare_stack.py`` on its own data dir: Typer, structlog,
pydantic-settings, FastAPI with one route, uvicorn, a SQLAlchemy async engine on aiosqlite and
a Fernet key check, none of Flowrunner. Its time to the first ``/healthz`` and its idle RSS are
the floor of any server on the libraries Flowrunner is built on; the ratios say what
Flowrunner's own start adds.

Measured with bytecode, as an installed Flowrunner runs (pip compiles it at install): the
package on ``PYTHONPATH`` is compiled first and ``PYTHONDONTWRITEBYTECODE`` (set in the
development container) is dropped for the measured processes. ``--source`` keeps it, to
see what compiling ~250 modules from source at every start costs.

    .venv/bin/python bench/startup.py [--runs 5] [--load 300] [--idle 3]
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from common import cpu_seconds, free_port
from cryptography.fernet import Fernet

ADMIN = ("bench", "bench-password-1")
FLOW = (
    "metadata: {name: one}\n"
    "nodes:\n  t: {type: transform, params: {script: 'const m = input.n + 1; return {n: m};'}}\n"
)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if stat[1] == str(pid):
                found.append(int(entry.name))
    return found


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


ENV = dict(os.environ)


def use_bytecode() -> None:
    """Compile the flowrunner package being measured and let its processes read the .pyc."""
    spec = importlib.util.find_spec("flowrunner")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("flowrunner is not importable (PYTHONPATH=src?)")
    for folder in spec.submodule_search_locations:
        compileall.compile_dir(folder, quiet=1)
    ENV.pop("PYTHONDONTWRITEBYTECODE", None)


BARE_STACK = Path(__file__).with_name("bare_stack.py")


def floor_once(tmp: str, key: str, measure_memory: bool) -> tuple[float, float, float]:
    """``bare_stack.py`` started on ``tmp``: seconds to its first ``/healthz``, its CPU
    seconds then, and (with ``measure_memory``) its RSS one second later."""
    port = free_port()
    argv = [sys.executable, str(BARE_STACK), "--port", str(port), "--data-dir", tmp]
    started = time.perf_counter()
    process = subprocess.Popen(
        [*argv, "--key", key], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while not _answers(f"http://127.0.0.1:{port}/healthz"):
            if process.poll() is not None:
                raise SystemExit("the bare stack did not start")
            time.sleep(0.01)
        ready, cpu = time.perf_counter() - started, cpu_seconds(process.pid) or 0.0
        rss = 0.0
        if measure_memory:
            time.sleep(1)
            rss = rss_mb(process.pid)
    finally:
        process.terminate()
        process.wait(20)
    return ready, cpu, rss


def cpu_of_children() -> float:
    usage = os.times()
    return usage.children_user + usage.children_system


def help_once() -> tuple[float, float]:
    before, started = cpu_of_children(), time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "flowrunner", "--help"], check=True, capture_output=True, env=ENV
    )
    return time.perf_counter() - started, cpu_of_children() - before


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _request(url: str, method: str, body: bytes, headers: dict[str, str]) -> bytes:
    request = urllib.request.Request(url, body, headers, method=method)
    with urllib.request.urlopen(request, timeout=30) as response:
        data: bytes = response.read()
        return data


def serve_once(
    measure_memory: bool, load: int, idle: float, tmp: str, key: str
) -> tuple[float, float, float]:
    """Seconds to the first ``/healthz``, the server's CPU seconds then, and its idle RSS
    (with ``measure_memory``, which also runs the memory scenario)."""
    import json

    port = free_port()
    env = {
        **ENV,
        "FLOWRUNNER_DATA_DIR": tmp,
        "FLOWRUNNER_SECRET_KEYS": key,
        "FLOWRUNNER_ADMIN_USERNAME": ADMIN[0],
        "FLOWRUNNER_ADMIN_PASSWORD": ADMIN[1],
        "FLOWRUNNER_SCRIPT_WORKER_IDLE_SECONDS": str(idle),
    }
    argv = [sys.executable, "-m", "flowrunner", "serve", "--port", str(port)]
    started = time.perf_counter()
    process = subprocess.Popen(
        [*argv, "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        while not _answers(f"{url}/healthz"):
            if process.poll() is not None:
                raise SystemExit("the server did not start")
            time.sleep(0.01)
        ready, cpu, idle_rss = time.perf_counter() - started, cpu_seconds(process.pid) or 0.0, 0.0
        if measure_memory:
            time.sleep(1)
            idle_rss = rss_mb(process.pid)
            print(f"serve idle              rss {idle_rss:6.1f} MB")
            login = _request(
                f"{url}/api/v1/login",
                "POST",
                json.dumps({"username": ADMIN[0], "password": ADMIN[1]}).encode(),
                {"content-type": "application/json"},
            )
            auth = {"Authorization": f"Bearer {json.loads(login)['token']}"}
            flow = json.loads(
                _request(
                    f"{url}/api/v1/flows",
                    "POST",
                    FLOW.encode(),
                    {**auth, "content-type": "application/yaml"},
                )
            )
            run = f"{url}/api/v1/flows/{flow['id']}/run?wait=30s"
            body = json.dumps({"input": {"n": 0}}).encode()
            headers = {**auth, "content-type": "application/json"}

            def report(label: str) -> None:
                workers = [rss_mb(pid) for pid in _children(process.pid)]
                shown = " + ".join(f"{w:.1f}" for w in workers) or "none"
                print(
                    f"serve {label:17} rss {rss_mb(process.pid):6.1f} MB, "
                    f"sandbox workers {shown} MB"
                )

            _request(run, "POST", body, headers)
            report("after one script")
            for _ in range(load):
                _request(run, "POST", body, headers)
            report(f"after {load} runs")
            if idle:
                time.sleep(idle + 2)
                report(f"idle {idle:g}s later")
    finally:
        process.terminate()
        process.wait(20)
    return ready, cpu, idle_rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--load", type=int, default=300, help="runs before the 'after load' RSS")
    parser.add_argument("--idle", type=float, default=3.0, help="sandbox worker idle seconds")
    parser.add_argument(
        "--source", action="store_true", help="keep PYTHONDONTWRITEBYTECODE (no .pyc)"
    )
    args = parser.parse_args()
    if not args.source:
        use_bytecode()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average {load}; {'source' if args.source else 'bytecode'}")
    helps = [help_once() for _ in range(args.runs)]
    print(
        f"flowrunner --help        wall {statistics.median(h[0] for h in helps):.3f} s, "
        f"cpu {statistics.median(h[1] for h in helps):.3f} s (median of {args.runs})"
    )
    # Each round: a first start on an empty data dir (it creates the database), then a
    # restart on the same one, the usual case, then the bare stack (a restart too: its
    # database exists from the round before). Memory is measured at the last restart.
    firsts, restarts, floors = [], [], []
    with tempfile.TemporaryDirectory() as bare_dir:
        bare_key = Fernet.generate_key().decode()
        floor_once(bare_dir, bare_key, False)  # creates its database
        for i in range(args.runs):
            last = i == args.runs - 1
            with tempfile.TemporaryDirectory() as tmp:
                key = Fernet.generate_key().decode()
                for started in (firsts, restarts):
                    before = cpu_of_children()
                    measured = serve_once(
                        last and started is restarts, args.load, args.idle, tmp, key
                    )
                    started.append((*measured, cpu_of_children() - before))
            floors.append(floor_once(bare_dir, bare_key, last))
    for label, ready in (("first start", firsts), ("restart", restarts)):
        # The CPU figure of the last restart includes its memory measurement: left out.
        cpus = [r[3] for r in ready[:-1]] if ready is restarts else [r[3] for r in ready]
        print(
            f"serve to first /healthz, {label:11} wall "
            f"{statistics.median(r[0] for r in ready):.3f} s, cpu (whole life, start to stop) "
            f"{statistics.median(cpus or [ready[-1][3]]):.3f} s (median of {args.runs})"
        )
    wall = statistics.median(r[0] for r in restarts), statistics.median(f[0] for f in floors)
    cpu = statistics.median(r[1] for r in restarts), statistics.median(f[1] for f in floors)
    rss = restarts[-1][2], floors[-1][2]
    print(
        f"restart vs bare stack    wall to /healthz {wall[0]:.3f} / {wall[1]:.3f} s "
        f"({wall[0] / wall[1]:.2f}x), cpu to /healthz {cpu[0]:.3f} / {cpu[1]:.3f} s "
        f"({cpu[0] / cpu[1]:.2f}x), idle rss {rss[0]:.1f} / {rss[1]:.1f} MB "
        f"(+{rss[0] - rss[1]:.1f})"
    )


if __name__ == "__main__":
    main()
