"""The store's side of a 10-node run on SQLite, in-process: CPU per run at 1/8/32 concurrent
runs, and how many transactions they took.

Each simulated run is what the runner asks of the store for the ``path`` flow of
``runs.py``: create, the ``running`` move, ten ``record_step`` writes (a node's two events and
its checkpoint; the last one with the final event) and the final status. ``--server-src``
runs the same measurement on another checkout's code (in a subprocess), so two code bases are
compared in the same session, interleaved over ``--rounds`` rounds. No HTTP, no engine: only
the storage path (``storage/sql/direct``), where group commit on the loop acts.

    .venv/bin/python bench/sqlite_rounds.py [--runs 400] [--rounds 4] [--server-src ../main/src]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LEVELS = (1, 8, 32)
NODES = 10


async def measure(runs: int, clients: int) -> tuple[float, float]:
    """CPU ms per run and transactions per run of ``runs`` runs, ``clients`` at a time."""
    from flowrunner.storage import NewCheckpoint, NewEvent
    from flowrunner.storage.sql import SqlStore

    with tempfile.TemporaryDirectory() as tmp:
        store = SqlStore(f"sqlite+aiosqlite:///{tmp}/bench.db")
        await store.connect()
        try:
            account = await store.accounts.create("bench", "x")
            ex = store.executions

            async def one_run() -> None:
                run = await ex.create(account.id, flow_id="f", flow_version=1, input={"n": 0})
                await ex.update(account.id, run.id, status="running", expected_status=["queued"])
                results: dict[str, object] = {}
                for i in range(1, NODES + 1):
                    node = f"n{i}"
                    results[node] = {"n": 0}
                    events = [
                        NewEvent("node.started", {"node_id": node}),
                        NewEvent("node.completed", {"node_id": node, "output": {"n": 0}}),
                    ]
                    last = i == NODES
                    if last:
                        events.append(NewEvent("execution.completed", {"output": {"n": 0}}))
                    await ex.record_step(
                        account.id,
                        run.id,
                        events,
                        checkpoint=None
                        if last
                        else NewCheckpoint(
                            shared={}, next_node=f"n{i + 1}", results=dict(results), resume={}
                        ),
                        progress=i / NODES,
                        current_node=node,
                    )
                await ex.update(
                    account.id,
                    run.id,
                    status="completed",
                    output={"n": 0},
                    expected_status=["running"],
                    drop_checkpoint=True,
                )

            direct = store.db.direct  # type: ignore[attr-defined]
            commits = direct.commits if direct is not None else 0
            queue: asyncio.Queue[None] = asyncio.Queue()
            for _ in range(runs):
                queue.put_nowait(None)

            async def client() -> None:
                while not queue.empty():
                    queue.get_nowait()
                    await one_run()

            started = time.process_time()
            await asyncio.gather(*(client() for _ in range(clients)))
            spent = time.process_time() - started
            commits = (direct.commits if direct is not None else 0) - commits
            return spent / runs * 1000, commits / runs
        finally:
            await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--server-src", help="another checkout's src, measured alongside")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # "runs,clients": one measurement
    args = parser.parse_args()
    if args.one:
        runs, clients = (int(x) for x in args.one.split(","))
        cpu, commits = asyncio.run(measure(runs, clients))
        print(f"{cpu} {commits}")
        return
    here = str(Path(__file__).resolve().parent.parent / "src")
    sources = {"this": here}
    if args.server_src:
        sources = {"other": str(Path(args.server_src).resolve()), "this": here}
    print(" / ".join(f"{k}: {v}" for k, v in sources.items()))
    print("runs at once | " + " | ".join(f"{k}: cpu ms/run, commits/run" for k in sources))
    for clients in LEVELS:
        got: dict[str, list[tuple[float, float]]] = {k: [] for k in sources}
        for r in range(args.rounds):
            for name in sources if r % 2 == 0 else reversed(list(sources)):
                out = subprocess.run(
                    [sys.executable, __file__, "--one", f"{args.runs},{clients}"],
                    env={**os.environ, "PYTHONPATH": sources[name]},
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.split()
                got[name].append((float(out[0]), float(out[1])))
        med = {k: [statistics.median(x[i] for x in got[k]) for i in (0, 1)] for k in sources}
        cells = [f"{med[k][0]:6.3f} {med[k][1]:5.2f}" for k in sources]
        print(
            f"{clients:>12} | " + " | ".join(cells) + f" | load {os.getloadavg()[0]:.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
