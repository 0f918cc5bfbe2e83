"""Every flow in examples/ is validated and run; its output is checked when an
``<name>.expected.json`` sits beside it (``<name>.input.json`` is its run input).

Examples that talk to a database get it from the test servers: ``postgres`` nodes a scratch
database of the PostgreSQL server as ``secrets.PG_DSN``, ``dynamodb`` nodes the session's
DynamoDB-API server as ``secrets.DYNAMODB_ENDPOINT`` (with any keys), ``store`` nodes a fresh
in-memory store of their own.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from flowrunner.definition import compile_flow, load_flow
from flowrunner.executions.run_kv import AccountKV
from flowrunner.nodes.database.connections import close_connections
from flowrunner.nodes.store import RUN_KV
from flowrunner.scripting import Sandbox
from flowrunner.storage.memory import MemoryStore
from tests.conftest import require_service
from tests.storage.conftest import scratch_postgres_database

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
FLOWS = sorted(EXAMPLES.rglob("*.yaml"))


def _types(path: Path) -> set[str]:
    text = path.read_text()
    return {t for t in ("postgres", "dynamodb") if f"type: {t}" in text}


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(workers=1) as box:
        yield box


@pytest.fixture
async def kv() -> AsyncIterator[None]:
    store = MemoryStore()
    await store.connect()
    token = RUN_KV.set(AccountKV(store.kv, "examples"))
    yield
    RUN_KV.reset(token)
    await store.close()


@pytest.fixture(scope="module")
def example_database() -> Iterator[str]:
    server = require_service("FLOWRUNNER_TEST_POSTGRES_URL", "PostgreSQL")
    for url in scratch_postgres_database(server, migrate=False):
        yield make_url(url).set(drivername="postgresql").render_as_string(False)


def _secrets(request: pytest.FixtureRequest, path: Path) -> dict[str, Any]:
    secrets: dict[str, Any] = {}
    needs = _types(path)
    if "postgres" in needs:
        secrets["PG_DSN"] = request.getfixturevalue("example_database")
    if "dynamodb" in needs:
        pytest.importorskip("aioboto3")
        secrets["DYNAMODB_ENDPOINT"] = request.getfixturevalue("dynamodb_endpoint")
        secrets |= {"AWS_ACCESS_KEY_ID": "examples", "AWS_SECRET_ACCESS_KEY": "examples"}
    return secrets


def test_there_are_examples() -> None:
    assert len(FLOWS) >= 3


@pytest.mark.parametrize("path", FLOWS, ids=[str(p.relative_to(EXAMPLES)) for p in FLOWS])
async def test_example_validates_and_runs(
    path: Path, sandbox: Sandbox, kv: None, request: pytest.FixtureRequest
) -> None:
    definition = load_flow(path.read_text(), source=str(path), base_path=path.parent)
    assert definition.warnings == [], definition.warnings
    secrets = _secrets(request, path)
    input_file = path.with_suffix(".input.json")
    run_input = json.loads(input_file.read_text()) if input_file.exists() else {}
    compiled = compile_flow(definition, scripts=sandbox, base_path=path.parent)
    try:
        result = await compiled.run(run_input, secrets=secrets)
    finally:
        await close_connections()
    expected_file = path.with_suffix(".expected.json")
    if expected_file.exists():
        assert result.output == json.loads(expected_file.read_text())
