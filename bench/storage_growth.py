"""How much the SQLite database (and its write-ahead log) grows per run of a big input.

Starts a real ``flowrunner serve`` on SQLite in a scratch data dir, stores a flow of ``--nodes``
transform nodes that each pass their input on unchanged (``return input``), and runs it
``--runs`` times, one after the other with ``?wait``, with an input of ``--kb`` KB. Prints the
size of ``flowrunner.db`` and ``flowrunner.db-wal`` before and after, and what is left in the
checkpoints table once every run has ended.

    .venv/bin/python bench/storage_growth.py [--runs 10] [--nodes 10] [--kb 900]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
from pathlib import Path

import aiohttp
from common import free_port, server
from cryptography.fernet import Fernet

ADMIN = ("bench", "bench-password-1")


def pass_through_flow(nodes: int) -> str:
    lines = ["metadata: {name: Pass through}", "nodes:"]
    for i in range(1, nodes + 1):
        nxt = f"\n    next: {{default: n{i + 1}}}" if i < nodes else ""
        lines.append(f"  n{i}:\n    type: transform\n    params: {{script: 'return input'}}{nxt}")
    return "\n".join(lines) + "\n"


def big_input(kb: int) -> dict[str, object]:
    # Many small records, as a real payload would be (not one long string).
    record = {"id": 0, "name": "customer name", "email": "someone@example.test", "n": 12.5}
    per = len(str(record)) + 8
    return {"records": [{**record, "id": i} for i in range((kb * 1024) // per)]}


def sizes(data_dir: Path) -> tuple[int, int]:
    db = data_dir / "flowrunner.db"
    wal = data_dir / "flowrunner.db-wal"
    return db.stat().st_size, wal.stat().st_size if wal.exists() else 0


def checkpoint_bytes(data_dir: Path) -> tuple[int, int]:
    conn = sqlite3.connect(f"file:{data_dir / 'flowrunner.db'}?mode=ro", uri=True)
    try:
        rows, total = conn.execute(
            "SELECT count(*), coalesce(sum(length(shared) + length(results)), 0) FROM checkpoints"
        ).fetchone()
    finally:
        conn.close()
    return int(rows), int(total)


async def drive(url: str, runs: int, nodes: int, kb: int, data_dir: Path) -> None:
    payload = big_input(kb)
    async with aiohttp.ClientSession(url, timeout=aiohttp.ClientTimeout(total=600)) as session:
        login = await session.post(
            "/api/v1/login", json={"username": ADMIN[0], "password": ADMIN[1]}
        )
        login.raise_for_status()
        headers = {"Authorization": f"Bearer {(await login.json())['token']}"}
        created = await session.post(
            "/api/v1/flows",
            data=pass_through_flow(nodes),
            headers={**headers, "content-type": "application/yaml"},
        )
        created.raise_for_status()
        flow_id = (await created.json())["id"]
        before = sizes(data_dir)
        for _ in range(runs):
            async with session.post(
                f"/api/v1/flows/{flow_id}/run?wait=120s", json={"input": payload}, headers=headers
            ) as response:
                body = await response.json()
                if response.status != 200 or body["status"] != "completed":
                    raise SystemExit(f"run did not complete: {response.status} {str(body)[:300]}")
        after = sizes(data_dir)
    rows, total = checkpoint_bytes(data_dir)
    mb = 1024 * 1024
    print(f"{runs} runs x {nodes} nodes x {kb} KB input")
    print(f"  db   {before[0] / mb:8.1f} MB -> {after[0] / mb:8.1f} MB")
    print(f"  wal  {before[1] / mb:8.1f} MB -> {after[1] / mb:8.1f} MB")
    grown = (after[0] + after[1] - before[0] - before[1]) / mb
    print(f"  db+wal growth {grown:.1f} MB ({grown / runs:.1f} MB per run)")
    print(f"  checkpoints left after the runs ended: {rows} rows, {total / mb:.1f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--kb", type=int, default=900)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        port = free_port()
        env = {
            "FLOWRUNNER_DATA_DIR": str(data_dir),
            "FLOWRUNNER_STORAGE": "sqlite",
            "FLOWRUNNER_SECRET_KEYS": Fernet.generate_key().decode(),
            "FLOWRUNNER_ADMIN_USERNAME": ADMIN[0],
            "FLOWRUNNER_ADMIN_PASSWORD": ADMIN[1],
            # Room for the input (the request body is a little bigger than the input).
            "FLOWRUNNER_MAX_REQUEST_BYTES": str(args.kb * 1024 * 2),
            "FLOWRUNNER_MAX_RUN_INPUT_BYTES": str(args.kb * 1024 * 2),
        }
        argv = [sys.executable, "-m", "flowrunner", "serve", "--port", str(port)]
        argv += ["--log-level", "warning"]
        url = f"http://127.0.0.1:{port}"
        with server(argv, env, f"{url}/healthz", log=data_dir / "server.log"):
            asyncio.run(drive(url, args.runs, args.nodes, args.kb, data_dir))


if __name__ == "__main__":
    main()
