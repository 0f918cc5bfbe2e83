"""Per-node overhead of the engine next to PocketFlow, measured in the same process.

Shapes: a 10-node linear flow run many times, one 10,000-node chain, and one batch node with
1,000 items run in parallel. Every node does trivial work (add one), so the time per node is
the engine's own overhead. Our engine runs with an observer collecting every event and
without one; PocketFlow runs its AsyncFlow (the like-for-like comparison) and its sync Flow.
Each figure is the best of several interleaved repeats, to keep scheduler noise out.

    .venv/bin/python bench/engine.py
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pocketflow as pf

from flowrunner.engine import BatchPolicy, Flow, Node, NodeEvent

REPEATS = 5


# --- our engine ---------------------------------------------------------------------------


class AddOne(Node):
    async def exec(self, prep_res: Any) -> Any:
        return prep_res + 1


class SyncAddOne(Node):
    def exec(self, prep_res: Any) -> Any:
        return prep_res + 1


def our_chain(length: int, cls: type[Node] = AddOne) -> Flow:
    first = node = cls(node_id="n0")
    for index in range(1, length):
        node = node >> cls(node_id=f"n{index}")
    return Flow(first, max_steps=length + 1)


def our_batch(size: int) -> tuple[Flow, list[int]]:
    return Flow(AddOne(batch=BatchPolicy("parallel"))), list(range(size))


# --- PocketFlow: nodes pass the value through `shared`, its only channel -------------------


class PfAsyncAddOne(pf.AsyncNode):  # type: ignore[misc]
    async def prep_async(self, shared: dict[str, Any]) -> Any:
        return shared["x"]

    async def exec_async(self, prep_res: Any) -> Any:
        return prep_res + 1

    async def post_async(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> None:
        shared["x"] = exec_res


class PfAddOne(pf.Node):  # type: ignore[misc]
    def prep(self, shared: dict[str, Any]) -> Any:
        return shared["x"]

    def exec(self, prep_res: Any) -> Any:
        return prep_res + 1

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> None:
        shared["x"] = exec_res


class PfAsyncBatch(pf.AsyncParallelBatchNode):  # type: ignore[misc]
    async def prep_async(self, shared: dict[str, Any]) -> Any:
        return shared["items"]

    async def exec_async(self, prep_res: Any) -> Any:
        return prep_res + 1

    async def post_async(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> None:
        shared["out"] = exec_res


def pf_chain(length: int, cls: type[Any]) -> Any:
    first = node = cls()
    for _ in range(1, length):
        node = node >> cls()
    return pf.AsyncFlow(first) if issubclass(cls, pf.AsyncNode) else pf.Flow(first)


# --- measuring ----------------------------------------------------------------------------


Variant = Callable[[], Coroutine[Any, Any, None]]


def best_us_per_unit(variants: dict[str, Variant], units: int) -> dict[str, float]:
    """Best-of-REPEATS wall time of each variant, in microseconds per unit (node or item).

    The variants take turns within every repeat, so a noisy neighbour on the machine slows
    them all alike instead of skewing whichever happened to run at that moment.
    """
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(REPEATS):
        for name, run in variants.items():
            start = time.perf_counter()
            asyncio.run(run())
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: seconds / units * 1e6 for name, seconds in best.items()}


def measure_chain(length: int, runs: int) -> dict[str, float]:
    ours, ours_sync = our_chain(length), our_chain(length, SyncAddOne)
    pf_async, pf_sync = pf_chain(length, PfAsyncAddOne), pf_chain(length, PfAddOne)
    events: list[NodeEvent] = []

    async def ours_off() -> None:
        for _ in range(runs):
            await ours.run(0)

    async def ours_on() -> None:
        for _ in range(runs):
            events.clear()
            await ours.run(0, observer=events.append)

    async def ours_sync_on() -> None:
        for _ in range(runs):
            events.clear()
            await ours_sync.run(0, observer=events.append)

    async def pf_async_run() -> None:
        for _ in range(runs):
            await pf_async.run_async({"x": 0})

    async def pf_sync_run() -> None:
        for _ in range(runs):
            pf_sync.run({"x": 0})

    variants: dict[str, Variant] = {
        "ours, observer on": ours_on,
        "ours, no observer": ours_off,
        "ours (sync exec), observer on": ours_sync_on,
        "pocketflow AsyncFlow": pf_async_run,
        "pocketflow Flow (sync)": pf_sync_run,
    }
    return best_us_per_unit(variants, length * runs)


def measure_batch(size: int, runs: int) -> dict[str, float]:
    ours, items = our_batch(size)
    pf_flow = pf.AsyncFlow(PfAsyncBatch())
    events: list[NodeEvent] = []

    async def ours_off() -> None:
        for _ in range(runs):
            await ours.run(items)

    async def ours_on() -> None:
        for _ in range(runs):
            events.clear()
            await ours.run(items, observer=events.append)

    async def pf_run() -> None:
        for _ in range(runs):
            await pf_flow.run_async({"items": items})

    variants: dict[str, Variant] = {
        "ours, observer on": ours_on,
        "ours, no observer": ours_off,
        "pocketflow AsyncParallelBatchNode": pf_run,
    }
    return best_us_per_unit(variants, size * runs)


def report(title: str, unit: str, figures: dict[str, float], baselines: list[str]) -> None:
    print(f"\n{title}")
    for name, value in figures.items():
        ratios = ""
        if name.startswith("ours"):
            ratios = "   ".join(f"{value / figures[b]:4.2f}x {b}" for b in baselines)
        print(f"  {name:<34} {value:7.2f} µs/{unit}   {ratios}")


def main() -> int:
    started = time.perf_counter()
    print(f"Python {sys.version.split()[0]}; best of {REPEATS} repeats; every node adds one.")
    chains = ["pocketflow AsyncFlow", "pocketflow Flow (sync)"]
    report("10-node linear flow, run 2,000 times", "node", measure_chain(10, 2_000), chains)
    report("10,000-node linear flow, run once", "node", measure_chain(10_000, 1), chains)
    report(
        "1,000-item parallel batch node, run 20 times",
        "item",
        measure_batch(1_000, 20),
        ["pocketflow AsyncParallelBatchNode"],
    )
    print(f"\ntotal bench time {time.perf_counter() - started:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
