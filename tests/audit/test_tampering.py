"""Tampering done directly in the database, behind a running ``flowrunner serve``, on SQLite
and on PostgreSQL: ``flowrunner audit verify`` fails naming the chain, and ``GET /audit``
does not show what was forged or edited."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest

from flowrunner.cli.audit import TAMPERED_EXIT_CODE
from flowrunner.storage.chain import GENESIS_HASH, record_hash
from tests.conftest import require_service
from tests.e2e.server import Server
from tests.storage.conftest import scratch_postgres_database

pytestmark = pytest.mark.slow


@dataclass
class Database:
    """Raw SQL on the server's database, as someone with write access to it would run it."""

    kind: str
    target: str  # a SQLite file path or a PostgreSQL URL

    def run(self, statement: str, *args: Any) -> list[tuple[Any, ...]]:
        if self.kind == "sqlite":
            with sqlite3.connect(self.target) as conn:
                return list(conn.execute(statement, args).fetchall())
        parts = statement.split("?")  # PostgreSQL numbers its placeholders
        numbered = parts[0] + "".join(f"${i}{part}" for i, part in enumerate(parts[1:], 1))
        return asyncio.run(self._pg(numbered, args))

    async def _pg(self, statement: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(self.target)
        try:
            return [tuple(r) for r in await conn.fetch(statement, *args)]
        finally:
            await conn.close()

    def created_at(self, value: Any) -> datetime:
        if isinstance(value, datetime):
            return value.astimezone(UTC)
        return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)  # SQLite: naive UTC text


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, Database]]:
    data_dir = tmp_path_factory.mktemp(f"tamper-{request.param}")
    if request.param == "postgres":
        url = require_service("FLOWRUNNER_TEST_POSTGRES_URL", "PostgreSQL")
        databases = scratch_postgres_database(url, migrate=False)
        database_url = next(databases)
        server = Server(data_dir, storage="postgres", database_url=database_url)
        db = Database("postgres", database_url)
    else:
        databases = iter(())
        server = Server(data_dir)
        db = Database("sqlite", str(data_dir / "flowrunner.db"))
    server.start(timeout=120)  # a hang guard on a busy machine
    try:
        yield server, db
    finally:
        server.stop()
        for _ in databases:  # drops the scratch database
            pass


def verify_cli(server: Server) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flowrunner", "audit", "verify"],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def audit_targets(client: httpx.Client, headers: dict[str, str], scope: str = "own") -> list[str]:
    response = client.get("/api/v1/audit", params={"scope": scope}, headers=headers)
    assert response.status_code == 200, response.text
    return [r["target"] for r in response.json()["items"]]


def test_forged_chain_edited_row_and_cut_off_end_are_caught_and_not_listed(
    deployment: tuple[Server, Database],
) -> None:
    server, db = deployment
    with httpx.Client(base_url=server.url, timeout=30) as client:
        admin = {"Authorization": f"Bearer {server.token()}"}
        created = client.post(
            "/api/v1/accounts", json={"username": "alice", "password": "password-123"},
            headers=admin,
        )  # fmt: skip
        alice_id = created.json()["id"]
        login = client.post("/api/v1/login", json={"username": "alice", "password": "password-123"})
        alice = {"Authorization": f"Bearer {login.json()['token']}"}
        for name in ("first", "second", "third"):
            assert client.post("/api/v1/tokens", json={"name": name}, headers=alice).is_success
        assert verify_cli(server).returncode == 0
        genuine = audit_targets(client, alice)
        assert len(genuine) >= 3

        # 1. A whole chain under a new name, every hash right and a head recorded: only the
        # name gives it away.
        (when,) = db.run(
            "SELECT MAX(created_at) FROM audit_records WHERE account_id = ?", alice_id
        )[0]
        created_at = db.created_at(when)
        data = {"outcome": "ok"}
        forged_hash = record_hash(
            chain="shadow", seq=1, action="secret.read", account_id=alice_id, actor=alice_id,
            target="FORGED", data=data, created_at=created_at, prev_hash=GENESIS_HASH,
        )  # fmt: skip
        db.run(
            "INSERT INTO audit_records (chain, seq, action, account_id, actor, target, data, "
            "created_at, prev_hash, hash) VALUES ('shadow', 1, 'secret.read', ?, ?, 'FORGED', "
            "?, ?, ?, ?)",
            alice_id, alice_id, json.dumps(data), when, GENESIS_HASH, forged_hash,
        )  # fmt: skip
        db.run("INSERT INTO audit_heads (chain, seq, hash) VALUES ('shadow', 1, ?)", forged_hash)
        result = verify_cli(server)
        assert result.returncode == TAMPERED_EXIT_CODE, result.stdout + result.stderr
        assert "chain 'shadow': not written by flowrunner" in result.stderr
        assert "chain 'global'" not in result.stderr
        assert "FORGED" not in audit_targets(client, alice)
        assert "FORGED" not in audit_targets(client, admin, scope="all")
        assert audit_targets(client, alice) == genuine

        # 2. An edited record of the real chain: caught, and left out of the listing.
        (seq,) = db.run(
            "SELECT MAX(seq) FROM audit_records WHERE chain = 'global' AND account_id = ?",
            alice_id,
        )[0]
        db.run("UPDATE audit_records SET actor = 'mallory' WHERE chain = 'global' AND seq = ?", seq)
        result = verify_cli(server)
        assert f"chain 'global': record {seq}: content does not match its hash" in result.stderr
        listed = client.get("/api/v1/audit", headers=alice).json()["items"]
        assert seq not in [r["seq"] for r in listed]
        assert "mallory" not in [r["actor"] for r in listed]
        db.run("DELETE FROM audit_records WHERE chain = 'global' AND seq = ?", seq)
        db.run("DELETE FROM audit_records WHERE chain = 'shadow'")
        db.run("DELETE FROM audit_heads WHERE chain = 'shadow'")

        # 3. The newest records deleted (the edited one went above): the chain still links,
        # but its recorded head names a record that is gone.
        (head,) = db.run("SELECT seq FROM audit_heads WHERE chain = 'global'")[0]
        db.run("DELETE FROM audit_records WHERE chain = 'global' AND seq > ?", seq - 1)
        result = verify_cli(server)
        assert result.returncode == TAMPERED_EXIT_CODE, result.stdout + result.stderr
        assert result.stderr.splitlines()[0] == (
            f"TAMPERED: chain 'global': ends at record {seq - 1} but its recorded head is "
            f"record {head}: records were removed from its end"
        )
