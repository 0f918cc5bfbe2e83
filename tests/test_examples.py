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

An example with a ``wait_for`` node waits for a signal, which only a server receives: it runs
on a real ``flowrunner serve`` (its secrets in the account's vault), and its
``<name>.signals.json`` acts the person it waits for: each step waits until the run waits at
node ``at``, then posts the link of the newest email in the example's mailbox whose URL holds
``click`` (an approval link), as a person clicking it would.

Examples that talk to a database get it from the test servers: ``postgres`` nodes a scratch
database of the PostgreSQL server as ``secrets.PG_DSN``, ``dynamodb`` nodes a DynamoDB-API
server of their own as ``secrets.DYNAMODB_ENDPOINT`` (with any keys), ``store`` nodes a fresh
in-memory store of their own."""

from __future__ import annotations

import asyncio
import email
import email.policy
import imaplib
import importlib.util
import json
import re
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from flowrunner.definition import compile_flow, load_flow
from flowrunner.executions.run_kv import AccountKV
from flowrunner.nodes.database.connections import close_connections
from flowrunner.nodes.store import RUN_KV
from flowrunner.scripting import Sandbox
from flowrunner.storage.memory import MemoryStore
from tests.conftest import HANG_GUARD, require_service
from tests.dynamodb_server import endpoint_for_tests
from tests.e2e.server import Server, create_flow, start_run
from tests.mail import mail_setup
from tests.storage.conftest import scratch_postgres_database

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
MCP_STDIO_ALLOWED = f"{sys.executable} examples/mcp-notes.server.py --stdio"
# examples/node-types/ holds node type definitions, not flows (tests/api/test_custom_types.py
# defines and runs them).
FLOWS = sorted(p for p in EXAMPLES.rglob("*.yaml") if "node-types" not in p.parts)


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
        if "type: wait_for" in text:
            output = await _run_on_server(path, run_input, secrets, tmp_path / "server")
        else:
            compiled = compile_flow(definition, scripts=sandbox, base_path=path.parent)
            try:
                result = await compiled.run(run_input, secrets=secrets, scoped={RUN_KV: memory_kv})
            finally:
                await close_connections()
            output = result.output
    expected_file = path.with_suffix(".expected.json")
    if expected_file.exists():
        assert output == json.loads(expected_file.read_text())


async def _run_on_server(
    path: Path, run_input: dict[str, Any], secrets: dict[str, Any], data_dir: Path
) -> Any:
    """Run a waiting example on a real server, clicking its emailed links; its output."""
    steps = json.loads(path.with_suffix(".signals.json").read_text())
    data_dir.mkdir()
    with Server(data_dir) as server:
        async with server.client() as client:
            for key, value in secrets.items():
                saved = await client.post(
                    "/api/v1/accounts/me/secrets", json={"key": key, "value": value}
                )
                assert saved.status_code in (200, 201), saved.text
            run_id = await start_run(client, await create_flow(client, path.read_text()), run_input)
            for step in steps:
                await _until(client, run_id, lambda run, at=step["at"]: _waits_at(run, at))
                link = _emailed_link(run_input, secrets, step["click"])
                async with httpx.AsyncClient(timeout=HANG_GUARD) as person:  # no token
                    clicked = await person.post(link)
                assert clicked.status_code == 202, clicked.text
            run = await _until(client, run_id, lambda run: run["status"] in _ENDED)
    assert run["status"] == "completed", run
    return run["output"]


_ENDED = ("completed", "failed", "canceled")


def _waits_at(run: dict[str, Any], node_id: str) -> bool:
    if run["status"] in _ENDED:
        raise AssertionError(f"the run ended before it waited at {node_id}: {run}")
    return run["status"] == "waiting" and (run["waiting_for"] or {}).get("node_id") == node_id


async def _until(client: httpx.AsyncClient, run_id: str, done: Any) -> dict[str, Any]:
    async with asyncio.timeout(HANG_GUARD):  # guards a hang only
        while True:  # the server does the work: polling its API is how to watch it
            run: dict[str, Any] = (await client.get(f"/api/v1/executions/{run_id}")).json()
            if done(run):
                return run
            await asyncio.sleep(0.1)


def _emailed_link(run_input: dict[str, Any], secrets: dict[str, Any], click: str) -> str:
    """The resume link holding ``click`` in the newest email of the example's mailbox."""
    context = ssl.create_default_context(cadata=run_input["ca_cert"])
    with imaplib.IMAP4_SSL("127.0.0.1", run_input["imap_port"], ssl_context=context) as imap:
        imap.login(run_input["mailbox"], secrets["IMAP_PASSWORD"])
        imap.select("INBOX")
        numbers = imap.search(None, "ALL")[1][0].split()
        fetched = imap.fetch(numbers[-1], "(RFC822)")[1][0]
    assert isinstance(fetched, tuple)
    message = email.message_from_bytes(fetched[1], policy=email.policy.default)
    body = message.get_body(("plain",))
    assert isinstance(body, email.message.EmailMessage)
    links: list[str] = re.findall(r"https?://\S+/api/v1/resume/\S+", str(body.get_content()))
    return next(link for link in links if click in link)
