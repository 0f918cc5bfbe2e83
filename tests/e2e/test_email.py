"""The email nodes through a real ``flowrunner serve``: the example flow with passwords from
the account's vault (never in the database or the log), and a run canceled mid-SMTP."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import HANG_GUARD
from tests.e2e.leaks import database_bytes, leaks
from tests.e2e.server import Server, create_flow, start_run
from tests.mail import SMTP_PASSWORD, mail_setup, make_certificate, smtp_server

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "email-report.yaml"

SEND_ONLY = """metadata: {name: Send only}
nodes:
  send:
    type: email.send
    params:
      smtp_host: 127.0.0.1
      smtp_port: ${input.smtp_port}
      ca_cert: ${input.ca_cert}
      username: mailer
      password: ${secrets.SMTP_PASSWORD}
      from: bot@example.test
      to: ana@example.test
      subject: held
"""


async def _save_secrets(client: httpx.AsyncClient, secrets: dict[str, str]) -> None:
    for key, value in secrets.items():
        saved = await client.post("/api/v1/accounts/me/secrets", json={"key": key, "value": value})
        assert saved.status_code in (200, 201), saved.text


async def test_the_email_example_runs_on_the_server_with_passwords_from_the_vault(
    server: Server, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    with mail_setup(tmp_path) as (run_input, secrets):
        await _save_secrets(client, secrets)
        flow_id = await create_flow(client, EXAMPLE.read_text())
        run = await client.post(
            f"/api/v1/flows/{flow_id}/run", params={"wait": "60s"}, json={"input": run_input}
        )
        assert run.status_code == 200, run.text
        execution = run.json()
        assert execution["status"] == "completed", execution
        assert execution["output"] == json.loads(EXAMPLE.with_suffix(".expected.json").read_text())
        # A second run finds nothing new: the first one marked the report as read.
        again = await client.post(
            f"/api/v1/flows/{flow_id}/run", params={"wait": "60s"}, json={"input": run_input}
        )
        assert again.json()["status"] == "completed", again.text
        assert len(again.json()["output"]) == 1  # the second report, the first one is read
        events = await client.get(f"/api/v1/executions/{execution['id']}/events")
        logs = await client.get(f"/api/v1/executions/{execution['id']}/logs")
        assert events.status_code == logs.status_code == 200, (events.text, logs.text)
    answers = "\n".join([run.text, again.text, events.text, logs.text]).encode()
    for password in secrets.values():
        assert leaks(database_bytes(server), password) == []
        assert leaks(server.log.read_bytes(), password) == []
        assert leaks(answers, password) == []


async def test_cancelling_a_run_on_the_server_drops_the_smtp_conversation(
    server: Server, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    certificate = make_certificate(tmp_path)
    await _save_secrets(client, {"SMTP_PASSWORD": SMTP_PASSWORD})
    with smtp_server(certificate) as smtp:
        smtp.handler.hold = threading.Event()
        flow_id = await create_flow(client, SEND_ONLY)
        run_input: dict[str, Any] = {"smtp_port": smtp.port, "ca_cert": certificate.pem}
        execution_id = await start_run(client, flow_id, run_input)
        assert await asyncio.to_thread(smtp.handler.held.wait, HANG_GUARD)
        canceled = await client.post(f"/api/v1/executions/{execution_id}/cancel")
        assert canceled.status_code == 200, canceled.text
        assert canceled.json()["status"] == "canceled"
        # The server process closed the connection with the message still unsent.
        assert await asyncio.to_thread(smtp.handler.closed.wait, HANG_GUARD)
        smtp.handler.hold.set()
        assert smtp.received == []
