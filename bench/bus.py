"""The Redis event bus: what a publish costs the run, with Redis answering and with it hung.

Starts its own ``redis-server`` on a free loopback port (no persistence; killed at the end)
and publishes ``--events`` one-event batches (a run publishes one batch per store write):

- ``awaited pipeline``: what ``publish`` did before the outbox, a pipelined PUBLISH to both
  topics awaited by the run, measured as the reference;
- ``RedisBus.publish``: the outbox, with Redis answering, then the time until a subscriber
  received every event (delivery);
- the same with Redis paused (SIGSTOP): the publish calls, and how many events were dropped
  and counted. The awaited pipeline would wait for as long as Redis hangs (guarded at 5 s).

    .venv/bin/python bench/bus.py [--events 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import time
from datetime import UTC, datetime

from common import free_port
from redis import asyncio as aioredis

from flowrunner.executions import Topic
from flowrunner.executions.redis_bus import RedisBus
from flowrunner.storage import ExecutionEvent

TIMEOUT = 2.0


def _event(seq: int) -> ExecutionEvent:
    return ExecutionEvent("e1", "a1", seq, "node", {"node_id": "n1", "n": seq}, datetime.now(UTC))


def _line(name: str, seconds: list[float]) -> None:
    ordered = sorted(seconds)
    mean = sum(ordered) / len(ordered) * 1e6
    p99 = ordered[int(0.99 * (len(ordered) - 1))] * 1e6
    print(f"{name:<34} {mean:9.1f} µs mean {p99:9.1f} µs p99 {ordered[-1] * 1e6:10.1f} µs max")


async def _awaited(url: str, events: int) -> None:
    client = aioredis.from_url(url)
    took = []
    for _ in range(events):
        start = time.perf_counter()
        async with client.pipeline(transaction=False) as pipe:
            pipe.publish("bench:execution", "x" * 120)
            pipe.publish("bench:flow", "x" * 120)
            await pipe.execute()
        took.append(time.perf_counter() - start)
    _line("awaited pipeline (before)", took)
    await client.aclose()


async def _outbox(bus: RedisBus, events: int, name: str) -> list[float]:
    took = []
    for seq in range(1, events + 1):
        start = time.perf_counter()
        await bus.publish("f1", [_event(seq)])
        took.append(time.perf_counter() - start)
        await asyncio.sleep(0)  # a run awaits its store write between two publishes
    _line(name, took)
    return took


async def measure(redis: subprocess.Popen[bytes], url: str, events: int) -> None:
    await _awaited(url, events)

    bus = RedisBus(url, timeout=TIMEOUT, buffer=1000)
    subscription = await bus.subscribe(Topic("a1", execution_id="e1"))
    received = 0

    async def receive() -> None:
        nonlocal received
        # Until every event arrived or was dropped (and counted) by the publisher.
        while received + bus.health().dropped_events < events:
            if await subscription.next(0.1) is not None:
                received += 1

    start = time.perf_counter()
    receiver = asyncio.get_running_loop().create_task(receive())
    await _outbox(bus, events, "RedisBus.publish, Redis answering")
    await receiver
    elapsed = time.perf_counter() - start
    print(f"delivered {received}/{events} in {elapsed:.2f} s ({received / elapsed:,.0f}/s)")

    print(f"dropped with Redis answering: {bus.health().dropped_events}")

    before = bus.health().dropped_events
    redis.send_signal(signal.SIGSTOP)
    await _outbox(bus, events, "RedisBus.publish, Redis paused")
    await asyncio.sleep(TIMEOUT + 0.5)  # the batch in flight times out
    health = bus.health()
    dropped = health.dropped_events - before
    print(f"paused: dropped {dropped} of {events}, connected={health.connected}")
    client = aioredis.from_url(url)
    try:
        await asyncio.wait_for(client.publish("bench:execution", "x"), 5)
        print("awaited publish with Redis paused: returned")
    except TimeoutError:
        print("awaited publish with Redis paused: still waiting after 5 s (before)")
    redis.send_signal(signal.SIGCONT)
    await client.aclose()
    await subscription.close()
    await bus.close()


def main(events: int) -> None:
    port = free_port()
    argv = ["/usr/bin/redis-server", "--port", str(port), "--bind", "127.0.0.1"]
    redis = subprocess.Popen([*argv, "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        asyncio.run(measure(redis, f"redis://127.0.0.1:{port}/0", events))
    finally:
        redis.kill()
        redis.wait(10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=5000)
    main(parser.parse_args().events)
