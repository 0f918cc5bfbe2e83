"""What the HTTP benchmarks share: latency results, a free loopback port, a server process.

The load generator is aiohttp: its client costs ~0.25 ms of CPU a request on these machines
where httpx's costs ~1.2 ms, more than the bare endpoint it is compared with. Client and
server share the machine's two cores, so a heavy client would be measured as server latency.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp


@dataclass
class Result:
    count: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    # What ``drive``'s CPU probe counted over the counted calls alone (each probe's figure,
    # e.g. a server's own and its children's CPU seconds); empty without a probe.
    cpu: tuple[float, ...] = ()

    @property
    def rps(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        """Latency percentile in milliseconds."""
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    def add(self, other: Result) -> None:
        self.count += other.count
        self.seconds += other.seconds
        self.latencies += other.latencies
        if not self.cpu:
            self.cpu = other.cpu
        elif other.cpu:
            self.cpu = tuple(a + b for a, b in zip(self.cpu, other.cpu, strict=True))

    def cpu_ms(self, index: int = 0) -> float | None:
        """Figure ``index`` of the CPU probe per counted call, in milliseconds."""
        if not self.cpu or not self.count:
            return None
        return self.cpu[index] / self.count * 1000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def server(
    argv: list[str], env: dict[str, str], health_url: str, log: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``argv`` (a server on loopback), wait until ``health_url`` answers 200, and stop
    it (SIGTERM, then SIGKILL) on the way out."""
    out = log.open("wb") if log else subprocess.DEVNULL
    process = subprocess.Popen(argv, env={**os.environ, **env}, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 60
        while not _answers(health_url):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text()[-2000:] if log else ""
                raise SystemExit(f"server {argv[-6:]} did not start\n{tail}")
            time.sleep(0.1)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if log:
            out.close()  # type: ignore[union-attr]


def _answers(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


Call = Callable[[aiohttp.ClientSession], Awaitable[None]]
CpuProbe = Callable[[], Sequence[float] | None]


async def drive(
    url: str,
    headers: dict[str, str],
    clients: int,
    seconds: float,
    call: Call,
    cpu: CpuProbe | None = None,
) -> Result:
    """``clients`` concurrent keep-alive connections, each calling ``call`` back to back for
    ``seconds`` after a short warm-up; the latency of every call.

    ``cpu`` (e.g. a server's CPU seconds so far) is read when the counted calls start and
    when they end: a probe read around the whole of ``drive`` would charge the warm-up's
    uncounted calls to the counted ones (a quarter more with two-second phases)."""
    latencies: list[float] = []

    async def one(stop_at: float, record: bool) -> None:
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(url, headers=headers, connector=connector) as session:
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                await call(session)
                if record:
                    latencies.append(time.perf_counter() - started)

    warm = time.perf_counter() + min(0.5, seconds / 4)
    await asyncio.gather(*(one(warm, False) for _ in range(clients)))
    before = cpu() if cpu else None
    began = time.perf_counter()
    await asyncio.gather(*(one(began + seconds, True) for _ in range(clients)))
    elapsed = time.perf_counter() - began
    after = cpu() if cpu else None
    spent: tuple[float, ...] = ()
    if before is not None and after is not None:
        spent = tuple(b - a for a, b in zip(before, after, strict=True))
    return Result(len(latencies), elapsed, latencies, spent)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process ``pid`` (all its threads) so far; None off Linux."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
