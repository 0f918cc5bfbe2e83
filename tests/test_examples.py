"""Every flow in examples/ is validated and run; its output is checked when an
``<name>.expected.json`` sits beside it (``<name>.input.json`` is its run input,
``<name>.secrets.json`` its secrets).

An example that calls a server ships it as ``<name>.server.py`` (a script that serves on
127.0.0.1, takes ``--port`` and prints its address as its first line): the test starts it on
a free port, passes the address as the input's ``base_url``, allows loopback for the run
(``FLOWRUNNER_HTTP_ALLOW_PRIVATE``) and stops it afterwards.

An example with an ``mcp`` node (or an ``agent``'s MCP tool) that starts a stdio server (a
``command:`` param) runs from the repository root with ``python`` in its input (this
interpreter) and the admin's allow-list (``FLOWRUNNER_MCP_STDIO_COMMANDS``) holding
``MCP_STDIO_ALLOWED``.

An example with ``email.send``/``email.receive`` nodes runs against the local mail servers
(``tests.mail.mail_setup``: aiosmtpd delivering to Dovecot): their ports, mailbox
and certificate are added to its input, the passwords to its secrets.

Examples that talk to a database get it from the test servers: ``postgres`` nodes a scratch
database of the PostgreSQL server as ``secrets.PG_DSN``, ``dynamodb`` nodes a DynamoDB-API
server of their own as ``secrets.DYNAMODB_ENDPOINT`` (with any keys), ``store`` nodes a fresh
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
from tests.dynamodb_server import endpoint_for_tests
from tests.mail import mail_setup
from tests.storage.conftest import scratch_postgres_database

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
MCP_STDIO_ALLOWED = f"{sys.executable} examples/mcp-notes.server.py --stdio"
FLOWS = sorted(EXAMPLES.rglob("*.yaml"))


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(workers=1) as box:
        yield box


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


@pytest.fixture
async def memory_kv() -> AsyncIterator[AccountKV]:
    store = MemoryStore()
    await store.connect()
    yield AccountKV(store.kv, "examples")
    await store.close()


@pytest.fixture(scope="module")
def example_database() -> Iterator[str]:
    server = require_service("FLOWRUNNER_TEST_POSTGRES_URL", "PostgreSQL")
    for url in scratch_postgres_database(server, migrate=False):
        yield make_url(url).set(drivername="postgresql").render_as_string(False)


def _database_secrets(
    request: pytest.FixtureRequest, text: str, servers: ExitStack
) -> dict[str, Any]:
    secrets: dict[str, Any] = {}
    if "type: postgres" in text:
        secrets["PG_DSN"] = request.getfixturevalue("example_database")
    if "type: dynamodb" in text:
        pytest.importorskip("aioboto3")
        if importlib.util.find_spec("moto") is None:
            require_service("FLOWRUNNER_TEST_DYNAMODB_ENDPOINT", "DynamoDB (or moto[server])")
        # A server of its own: the expected output counts from an empty table.
        secrets["DYNAMODB_ENDPOINT"] = servers.enter_context(endpoint_for_tests())
        secrets |= {"AWS_ACCESS_KEY_ID": "examples", "AWS_SECRET_ACCESS_KEY": "examples"}
    return secrets


def test_there_are_examples() -> None:
    assert len(FLOWS) >= 3


@pytest.mark.parametrize("path", FLOWS, ids=[str(p.relative_to(EXAMPLES)) for p in FLOWS])
async def test_example_validates_and_runs(
    path: Path,
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    memory_kv: AccountKV,
    request: pytest.FixtureRequest,
) -> None:
    definition = load_flow(path.read_text(), source=str(path), base_path=path.parent)
    assert definition.warnings == [], definition.warnings
    input_file = path.with_suffix(".input.json")
    run_input = json.loads(input_file.read_text()) if input_file.exists() else {}
    secrets_file = path.with_suffix(".secrets.json")
    secrets = json.loads(secrets_file.read_text()) if secrets_file.exists() else {}
    server = path.with_suffix(".server.py")
    with ExitStack() as servers:
        if server.exists():
            run_input["base_url"] = servers.enter_context(example_server(server))
            monkeypatch.setenv("FLOWRUNNER_HTTP_ALLOW_PRIVATE", "true")
        text = path.read_text()
        if ("type: mcp" in text or "type: agent" in text) and "command:" in text:
            run_input["python"] = sys.executable
            monkeypatch.setenv("FLOWRUNNER_MCP_STDIO_COMMANDS", MCP_STDIO_ALLOWED)
            monkeypatch.chdir(EXAMPLES.parent)
        if "type: email." in text:
            mail_input, mail_secrets = servers.enter_context(mail_setup(tmp_path))
            run_input = {**run_input, **mail_input}
            secrets = {**secrets, **mail_secrets}
        secrets = {**secrets, **_database_secrets(request, path.read_text(), servers)}
        compiled = compile_flow(definition, scripts=sandbox, base_path=path.parent)
        try:
            result = await compiled.run(run_input, secrets=secrets, scoped={RUN_KV: memory_kv})
        finally:
            await close_connections()
    expected_file = path.with_suffix(".expected.json")
    if expected_file.exists():
        assert result.output == json.loads(expected_file.read_text())
