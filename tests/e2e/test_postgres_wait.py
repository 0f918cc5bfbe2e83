"""Through two real servers on one PostgreSQL database: a run started on one is waited for
(``GET /executions/{id}?wait=``) on the other, which wakes on the end notice the first one's
final write sends (LISTEN/NOTIFY), with the default in-process bus between them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tests.conftest import HANG_GUARD, require_service
from tests.e2e.flows import STEPS
from tests.e2e.server import Server, create_flow, start_run
from tests.storage.conftest import scratch_postgres_database

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture
def postgres_url() -> Iterator[str]:
    server = require_service("FLOWRUNNER_TEST_POSTGRES_URL", "PostgreSQL")
    yield from scratch_postgres_database(server, migrate=False)


async def test_a_run_of_one_server_is_waited_for_on_another(
    tmp_path: Path, postgres_url: str
) -> None:
    shared = {
        "storage": "postgres",
        "database_url": postgres_url,
        "secret_keys": Fernet.generate_key().decode(),
    }
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with Server(tmp_path / "a", **shared) as runs_it, Server(tmp_path / "b", **shared) as waits:
        async with runs_it.client() as a, waits.client() as b:
            flow_id = await create_flow(a, STEPS)
            run_id = await start_run(a, flow_id, {"name": "Ada", "nap": "1s"})
            waited = await b.get(f"/api/v1/executions/{run_id}?wait={HANG_GUARD:.0f}s")
            assert waited.status_code == 200, waited.text
            body = waited.json()
            assert body["status"] == "completed"
            assert body["output"] == {"done": True}
            # What the waiting server answered is what the running one stored.
            assert (await a.get(f"/api/v1/executions/{run_id}")).json() == body
