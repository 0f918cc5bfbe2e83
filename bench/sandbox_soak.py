"""Soak the JavaScript sandbox: a million evaluations, zero failures, flat worker memory.

Before the leak fix every evaluation compiled a new script (the scope was written into the
call's source) and a worker's V8 heap grew ~0.5 MB per 1,000 evaluations until its 64 MB
limit failed an innocent evaluation (~155k per worker), with worker RSS growing from ~71 to
~160 MB. This drives ``--evaluations`` (default 1,000,000) distinct-scope evaluations of a
few snippets through a ``Sandbox`` with the server's default settings (2 workers, recycling
after 100,000 evaluations or 384 MB RSS) from ``--concurrency`` callers (default: one per
worker), and prints
evaluations/s, failures, worker RSS and V8 heap at the start, middle and end, and how many
workers were recycled. ``--recycle-after 0 --recycle-rss-mb 0`` soaks one set of workers
with recycling off, which shows the heap itself stays flat.

    .venv/bin/python bench/sandbox_soak.py [--evaluations 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

from flowrunner.scripting import Sandbox

EXPRESSION = "input.items.map((i) => i.price * i.qty).reduce((a, b) => a + b, 0) + input.n"
FUNCTION = """
shared.count = (shared.count ?? 0) + 1;
if (input.n % 1000 === 0) console.log("at", input.n);
return {id: input.tag.toUpperCase(), total: input.items.length * params.rate};
"""


def rss_mb(pid: int) -> float:
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return float("nan")
    return pages * 4096 / (1 << 20)


async def snapshot(sandbox: Sandbox, label: str, done: int, started: float) -> dict[str, Any]:
    # Two stats calls in flight at once borrow both workers (with two workers).
    stats = await asyncio.gather(*(sandbox.worker_stats() for _ in sandbox.worker_pids))
    rss = [rss_mb(pid) for pid in sandbox.worker_pids]
    elapsed = time.perf_counter() - started
    row = {
        "label": label,
        "evaluations": done,
        "rate": done / elapsed if elapsed else 0.0,
        "rss": rss,
        "heap": [s["heap_used"] / (1 << 20) for s in stats],
        "recycled": sandbox.recycled,
    }
    rss_text = " ".join(f"{r:6.1f}" for r in rss)
    heap_text = " ".join(f"{h:5.1f}" for h in row["heap"])
    print(
        f"{label:<6} {done:>9,} evals {row['rate']:8.0f}/s  worker RSS MB [{rss_text}]  "
        f"heap used MB [{heap_text}]  recycled {sandbox.recycled}",
        flush=True,
    )
    return row


async def soak(args: argparse.Namespace) -> None:
    failures: Counter[str] = Counter()
    done = 0
    async with Sandbox(
        workers=args.workers,
        recycle_after=args.recycle_after,
        recycle_rss_mb=args.recycle_rss_mb,
    ) as sandbox:

        async def one(n: int) -> None:
            items = [{"price": n % 7 + i, "qty": 1 + i} for i in range(3)]
            scope = {"input": {"n": n, "items": items, "tag": f"t{n}"}}
            if n % 2:
                value = await sandbox.evaluate_expression(EXPRESSION, scope)
                expected = sum((n % 7 + i) * (1 + i) for i in range(3)) + n
                if value != expected:
                    raise AssertionError(f"expression gave {value!r}, expected {expected!r}")
            else:
                result = await sandbox.run_function(
                    FUNCTION, {**scope, "params": {"rate": 2}, "shared": {"count": n}}
                )
                if result.value != {"id": f"T{n}", "total": 6} or result.shared != {"count": n + 1}:
                    raise AssertionError(f"function gave {result.value!r} / {result.shared!r}")

        for n in range(200):  # warm up: both snippets compiled in both workers
            await one(n)
        started = time.perf_counter()
        rows = [await snapshot(sandbox, "start", 0, started)]
        next_index = 0

        async def caller(upto: int) -> None:
            nonlocal done, next_index
            while next_index < upto:
                n = next_index
                next_index += 1
                try:
                    await one(n)
                except Exception as exc:  # every failure is counted and shown below
                    failures[f"{type(exc).__name__}: {exc}"[:200]] += 1
                done += 1

        async def progress() -> None:
            # Only /proc here: a stats request would queue behind the callers.
            while True:
                await asyncio.sleep(args.progress_seconds)
                elapsed = time.perf_counter() - started
                rss = " ".join(f"{rss_mb(pid):6.1f}" for pid in sandbox.worker_pids)
                print(
                    f"       {done:>9,} evals {done / elapsed:8.0f}/s  worker RSS MB [{rss}]  "
                    f"recycled {sandbox.recycled}  failures {sum(failures.values())}",
                    flush=True,
                )

        reporter = asyncio.create_task(progress())
        # Two phases, so the middle snapshot sees idle workers and an exact count.
        for upto, label in ((args.evaluations // 2, "middle"), (args.evaluations, "end")):
            await asyncio.gather(*(caller(upto) for _ in range(args.concurrency)))
            if label == "end":
                elapsed = time.perf_counter() - started
            rows.append(await snapshot(sandbox, label, done, started))
        reporter.cancel()

    print()
    print(f"evaluations      {done:,} in {elapsed:.0f} s = {done / elapsed:,.0f}/s")
    print(f"failures         {sum(failures.values())}")
    for message, count in failures.most_common(5):
        print(f"  {count} x {message}")
    for row in rows:
        rss = ", ".join(f"{r:.1f}" for r in row["rss"])
        heap = ", ".join(f"{h:.1f}" for h in row["heap"])
        print(f"{row['label']:<6} worker RSS MB [{rss}]  V8 heap used MB [{heap}]")
    print(f"workers recycled {rows[-1]['recycled']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evaluations", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    # As many callers as workers by default: this soaks memory and recycling. More callers
    # than workers also measures the pool's hand-off, which (before the fairness work) let a
    # caller that just released a worker take it straight back, so a waiting caller could
    # starve until "no sandbox worker became available" (12 in 1M at --concurrency 4).
    parser.add_argument("--concurrency", type=int, default=0, help="default: --workers")
    parser.add_argument("--recycle-after", type=int, default=100_000)
    parser.add_argument("--recycle-rss-mb", type=int, default=384)
    parser.add_argument("--progress-seconds", type=float, default=20.0)
    args = parser.parse_args()
    args.concurrency = args.concurrency or args.workers
    asyncio.run(soak(args))


if __name__ == "__main__":
    main()
