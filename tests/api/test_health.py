"""``/readyz``: ready while the store answers at the schema this code expects; the sandbox
reported without being started, and failing readiness for nothing that still lets it serve."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy.engine import make_url

from flowrunner.config import Settings
from flowrunner.scripting.sandbox import SandboxHealth
from flowrunner.storage.sql.migrate import plain_head
from tests.api.helpers import Api


def _set_revision(settings: Settings, revision: str) -> None:
    assert settings.database_url is not None
    with sqlite3.connect(make_url(settings.database_url).database or "") as conn:
        conn.execute("UPDATE alembic_version SET version_num = ?", (revision,))


async def test_readiness_reports_a_current_schema_and_a_sandbox_not_yet_started(
    api: Api,
) -> None:
    response = await api.client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "migrations": {"state": "current", "revision": plain_head(), "head": plain_head()},
        # Asking does not start a worker: none has run a script yet.
        "sandbox": {"status": "not_started", "workers_alive": 0, "reason": None},
    }
    assert api.app.state.executions.sandbox_health().workers_alive == 0


async def test_readiness_fails_while_the_schema_is_older_than_the_code(
    api: Api, settings: Settings
) -> None:
    _set_revision(settings, "0001")

    response = await api.client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert (body["status"], body["reason"]) == ("unavailable", "migrations_pending")
    assert body["migrations"] == {"state": "behind", "revision": "0001", "head": plain_head()}
    assert (await api.client.get("/healthz")).status_code == 200


async def test_a_schema_migrated_by_a_newer_release_still_serves(
    api: Api, settings: Settings
) -> None:
    # A rolling upgrade: the new release migrated first; this process still serves.
    _set_revision(settings, "9999_from_the_future")

    response = await api.client.get("/readyz")

    assert response.status_code == 200
    assert response.json()["migrations"]["state"] == "ahead"


async def test_a_sandbox_that_failed_to_start_degrades_but_keeps_the_process_ready(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    failed = SandboxHealth("failed", 0, "the sandbox workers could not start: no memory")
    monkeypatch.setattr(api.app.state.executions, "sandbox_health", lambda: failed)

    response = await api.client.get("/readyz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["sandbox"] == {
        "status": "failed",
        "workers_alive": 0,
        "reason": "the sandbox workers could not start: no memory",
    }
