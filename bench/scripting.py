"""Latency of one JavaScript evaluation through the sandbox, next to bare mini-racer.

Snippets: a trivial expression (`input + 1`) and a 20-line transform over 50 orders. Rows:

* sandbox warm — a warm worker that has compiled the snippet before (the normal case), timed
  from the caller's `await` to the decoded result: JSON in, process hop, V8, JSON out;
* sandbox cold — a brand-new worker process (spawn, V8 start, runtime hardening) plus the
  first evaluation, as after a worker was replaced;
* mini-racer warm / cold — the bare library in this process: `MiniRacer.eval`/`call` on a
  context that has the snippet, and a new `MiniRacer()` per evaluation. No limits, no
  isolation between calls, no process boundary: the floor we pay for.

    .venv/bin/python bench/scripting.py
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable

from py_mini_racer import MiniRacer

from flowrunner.scripting import Sandbox

WARM_SAMPLES = 2000
COLD_SAMPLES = 8

TRIVIAL = "input + 1"
TRANSFORM = """
const large = [];
let revenue = 0;
for (const order of input.orders) {
  const total = order.items.reduce((sum, item) => sum + item.price * item.qty, 0);
  revenue += total;
  if (total < params.threshold) continue;
  large.push({
    id: order.id,
    customer: order.customer.toUpperCase(),
    total: Math.round(total * 100) / 100,
    items: order.items.length,
  });
}
large.sort((a, b) => b.total - a.total);
shared.runs = (shared.runs || 0) + 1;
return {
  count: large.length,
  revenue: Math.round(revenue),
  top: large.slice(0, 5),
};
"""
ORDERS = {
    "orders": [
        {
            "id": i,
            "customer": f"customer-{i % 7}",
            "items": [{"price": 3.5 + j, "qty": 1 + (i + j) % 3} for j in range(4)],
        }
        for i in range(50)
    ]
}
SCOPE = {"input": ORDERS, "params": {"threshold": 30}, "shared": {}}


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered) * 1e3, p99 * 1e3


async def time_async(fn: Callable[[], Awaitable[object]], n: int) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        await fn()
        samples.append(time.perf_counter() - started)
    return samples


def time_sync(fn: Callable[[], object], n: int) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return samples


async def sandbox_rows() -> dict[tuple[str, str], list[float]]:
    rows: dict[tuple[str, str], list[float]] = {}
    async with Sandbox(workers=2) as box:
        trivial = lambda: box.evaluate_expression(TRIVIAL, {"input": 41})  # noqa: E731
        transform = lambda: box.run_function(TRANSFORM, SCOPE)  # noqa: E731
        await time_async(trivial, 200)
        await time_async(transform, 200)
        rows["trivial", "sandbox warm"] = await time_async(trivial, WARM_SAMPLES)
        rows["transform", "sandbox warm"] = await time_async(transform, WARM_SAMPLES)
        check = (await box.run_function(TRANSFORM, SCOPE)).value
    for name, call in (("trivial", TRIVIAL), ("transform", TRANSFORM)):
        samples = []
        for _ in range(COLD_SAMPLES):
            started = time.perf_counter()
            async with Sandbox(workers=1) as fresh:
                if name == "trivial":
                    await fresh.evaluate_expression(call, {"input": 41})
                else:
                    await fresh.run_function(call, SCOPE)
                samples.append(time.perf_counter() - started)
        rows[name, "sandbox cold"] = samples
    assert check["count"] > 0
    return rows


def mini_racer_rows() -> dict[tuple[str, str], list[float]]:
    rows: dict[tuple[str, str], list[float]] = {}
    fn_source = f"function transform(input, params, shared) {{{TRANSFORM}}}"
    mr = MiniRacer()
    mr.eval(fn_source)
    args = (SCOPE["input"], SCOPE["params"], SCOPE["shared"])
    trivial = lambda: mr.eval(f"{json.dumps(41)} + 1")  # noqa: E731
    transform = lambda: mr.call("transform", *args)  # noqa: E731
    time_sync(trivial, 200)
    time_sync(transform, 200)
    rows["trivial", "mini-racer warm"] = time_sync(trivial, WARM_SAMPLES)
    rows["transform", "mini-racer warm"] = time_sync(transform, WARM_SAMPLES)

    def cold(name: str) -> None:
        fresh = MiniRacer()
        if name == "trivial":
            fresh.eval("41 + 1")
        else:
            fresh.eval(fn_source)
            fresh.call("transform", *args)
        fresh.close()

    rows["trivial", "mini-racer cold"] = time_sync(lambda: cold("trivial"), COLD_SAMPLES * 4)
    rows["transform", "mini-racer cold"] = time_sync(lambda: cold("transform"), COLD_SAMPLES * 4)
    return rows


def main() -> None:
    rows = mini_racer_rows()
    rows.update(asyncio.run(sandbox_rows()))
    print(f"{'snippet':<10} {'variant':<16} {'p50 ms':>9} {'p99 ms':>9} {'p50 ratio':>10}")
    for snippet in ("trivial", "transform"):
        for temp in ("warm", "cold"):
            base, _ = percentiles(rows[snippet, f"mini-racer {temp}"])
            for variant in (f"mini-racer {temp}", f"sandbox {temp}"):
                p50, p99 = percentiles(rows[snippet, variant])
                print(f"{snippet:<10} {variant:<16} {p50:9.3f} {p99:9.3f} {p50 / base:9.2f}x")


if __name__ == "__main__":
    main()
