"""Every flow in examples/ is validated and run; its output is checked when an
``<name>.expected.json`` sits beside it (``<name>.input.json`` is its run input,
``<name>.secrets.json`` its secrets).

An example that calls a server ships it as ``<name>.server.py`` (a script that serves on
127.0.0.1, takes ``--port`` and prints its address as its first line): the test starts it on
a free port, passes the address as the input's ``base_url``, allows loopback for the run
(``FLOWRUNNER_HTTP_ALLOW_PRIVATE``) and stops it afterwards.

Examples that talk to a database get it from the test servers: ``postgres`` nodes a scratch
database of the PostgreSQL server as ``secrets.PG_DSN``, ``dynamodb`` nodes the session's
DynamoDB-API server as ``secrets.DYNAMODB_ENDPOINT`` (with any keys), ``store`` nodes a fresh
in-memory store of their own."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, contextmanager
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
ENDPOINT_ENV = "FLOWRUNNER_TEST_DYNAMODB_ENDPOINT"
FLOWS = sorted(EXAMPLES.rglob("*.yaml"))


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


def _database_secrets(
    request: pytest.FixtureRequest, path: Path, stack: ExitStack
) -> dict[str, Any]:
    text = path.read_text()
    secrets: dict[str, Any] = {}
    if "type: postgres" in text:
        secrets["PG_DSN"] = request.getfixturevalue("example_database")
    if "type: dynamodb" in text:
        pytest.importorskip("aioboto3")
        if importlib.util.find_spec("moto") is None:
            require_service(ENDPOINT_ENV, "DynamoDB (or moto[server])")
        from flowrunner.storage.dynamodb.testing import endpoint_for_tests

        # A server of its own: the expected output counts from an empty table.
        secrets["DYNAMODB_ENDPOINT"] = stack.enter_context(endpoint_for_tests())
        secrets |= {"AWS_ACCESS_KEY_ID": "examples", "AWS_SECRET_ACCESS_KEY": "examples"}
    return secrets


@contextmanager
def example_server(script: Path) -> Iterator[str]:
    """Runs an example's server on a free port; its address."""
    process = subprocess.Popen(
        [sys.executable, str(script), "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        address = process.stdout.readline().strip()
        assert address.startswith("http://127.0.0.1:"), f"{script.name} printed {address!r}"
        yield address
    finally:
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


def test_there_are_examples() -> None:
    assert len(FLOWS) >= 3


@pytest.mark.parametrize("path", FLOWS, ids=[str(p.relative_to(EXAMPLES)) for p in FLOWS])
async def test_example_validates_and_runs(
    path: Path,
    sandbox: Sandbox,
    kv: None,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    definition = load_flow(path.read_text(), source=str(path), base_path=path.parent)
    assert definition.warnings == [], definition.warnings
    input_file = path.with_suffix(".input.json")
    run_input = json.loads(input_file.read_text()) if input_file.exists() else {}
    secrets_file = path.with_suffix(".secrets.json")
    secrets = json.loads(secrets_file.read_text()) if secrets_file.exists() else {}
    server = path.with_suffix(".server.py")
    with (
        ExitStack() as stack,
        example_server(server) if server.exists() else _no_server() as address,
    ):
        secrets |= _database_secrets(request, path, stack)
        if address is not None:
            run_input["base_url"] = address
            monkeypatch.setenv("FLOWRUNNER_HTTP_ALLOW_PRIVATE", "true")
        compiled = compile_flow(definition, scripts=sandbox, base_path=path.parent)
        try:
            result = await compiled.run(run_input, secrets=secrets)
        finally:
            await close_connections()
    expected_file = path.with_suffix(".expected.json")
    if expected_file.exists():
        assert result.output == json.loads(expected_file.read_text())


@contextmanager
def _no_server() -> Iterator[None]:
    yield None
