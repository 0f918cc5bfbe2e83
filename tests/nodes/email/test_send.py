"""``email.send`` against a real aiosmtpd server (STARTTLS, implicit TLS or none, with AUTH)."""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import json
import threading
from collections.abc import Iterator
from email.message import EmailMessage

import pytest

from flowrunner.definition import compile_flow, load_flow
from tests.conftest import HANG_GUARD
from tests.mail import Certificate, SmtpServer, silent_server, smtp_server
from tests.nodes.email.flows import SMTP_SECRETS, flow_yaml, run_node, smtp_params


def _parsed(data: bytes) -> EmailMessage:
    # Line ends as a reader sees them (the wire has CRLF).
    message = email.message_from_bytes(data.replace(b"\r\n", b"\n"), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


@pytest.fixture
def plain_smtp(certificate: Certificate) -> Iterator[SmtpServer]:
    """No Dovecot behind it: records only."""
    with smtp_server(certificate) as server:
        yield server


async def test_send_over_starttls_with_auth_writes_every_part_of_the_message(
    plain_smtp: SmtpServer, certificate: Certificate
) -> None:
    params = smtp_params(
        plain_smtp,
        certificate,
        to=["Ana Müller <ana@example.test>", "bo@example.test"],
        cc="Cy <cy@example.test>",
        bcc=["hidden@example.test"],
        reply_to="replies@example.test",
        subject="Grüße — résumé ✓",
        body="Hello Ana,\nthe numbers are attached.\n",
        html="<p>Hello <b>Ana</b></p>",
        headers={"X-Campaign": "spring", "X-Count": 3},
        attachments=[
            {"filename": "numbers.csv", "content": "a,b\n1,2\n"},
            {
                "filename": "logo.png",
                "content": base64.b64encode(b"\x89PNG\r\n\x1a\n\x00\xff").decode(),
                "encoding": "base64",
            },
            {"filename": "data.json", "content": {"total": 3, "ok": True}},
        ],
    )
    result = await run_node("email.send", params, secrets=SMTP_SECRETS)

    output = result.output
    assert output["accepted"] == [
        "ana@example.test",
        "bo@example.test",
        "cy@example.test",
        "hidden@example.test",
    ]
    assert output["refused"] == {}
    assert output["message_id"].startswith("<")
    assert output["message_id"].endswith("@example.test>")
    assert output["response"].startswith("2.0.0 Message accepted")
    # The original's key, beside shared.result.
    assert result.shared["email_result"] is result.shared["result"] is output

    [received] = plain_smtp.received
    assert received.auth_user == "mailer"
    assert received.sender == "bot@example.test"
    assert received.recipients == output["accepted"]
    message = _parsed(received.data)
    assert message["Subject"] == "Grüße — résumé ✓"
    assert message["From"] == "Flowrunner Bot <bot@example.test>"
    assert message["To"] == "Ana Müller <ana@example.test>, bo@example.test"
    assert message["Cc"] == "Cy <cy@example.test>"
    assert message["Reply-To"] == "replies@example.test"
    assert message["Bcc"] is None
    assert b"hidden@" not in received.data
    assert message["Message-ID"] == output["message_id"]
    assert message["X-Campaign"] == "spring"
    assert message["X-Count"] == "3"
    body = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert body is not None
    assert body.get_content() == "Hello Ana,\nthe numbers are attached.\n"
    assert html is not None
    assert html.get_content() == "<p>Hello <b>Ana</b></p>\n"
    attachments = {
        a.get_filename(): (a.get_content_type(), a.get_payload(decode=True))
        for a in message.iter_attachments()
    }
    assert attachments == {
        "numbers.csv": ("text/csv", b"a,b\n1,2\n"),
        "logo.png": ("image/png", b"\x89PNG\r\n\x1a\n\x00\xff"),
        "data.json": ("application/json", json.dumps({"ok": True, "total": 3}).encode()),
    }


@pytest.mark.parametrize("tls", ["implicit", "none"])
async def test_send_over_implicit_tls_or_no_tls(certificate: Certificate, tls: str) -> None:
    with smtp_server(certificate, tls=tls) as server:
        params = smtp_params(server, certificate, to="ana@example.test", subject="hi", body="x")
        result = await run_node("email.send", params, secrets=SMTP_SECRETS)
    assert result.output["accepted"] == ["ana@example.test"]
    assert [r.auth_user for r in server.received] == ["mailer"]


async def test_some_recipients_refused_are_reported_and_the_rest_get_the_message(
    plain_smtp: SmtpServer, certificate: Certificate
) -> None:
    params = smtp_params(
        plain_smtp, certificate, to=["ana@example.test", "ghost@refused.test"], body="x"
    )
    result = await run_node("email.send", params, secrets=SMTP_SECRETS)
    assert result.output["accepted"] == ["ana@example.test"]
    assert result.output["refused"] == {"ghost@refused.test": "550 5.1.1 no such user here"}
    assert [r.recipients for r in plain_smtp.received] == [["ana@example.test"]]


async def test_every_recipient_refused_fails_the_node_through_its_error_edge(
    plain_smtp: SmtpServer, certificate: Certificate
) -> None:
    params = smtp_params(plain_smtp, certificate, to="ghost@refused.test", body="x")
    result = await run_node("email.send", params, secrets=SMTP_SECRETS, error_edge=True)
    assert result.output["type"] == "EmailError"
    assert result.output["failed"] == (
        f"SMTP server 127.0.0.1:{plain_smtp.port} refused every recipient: "
        "ghost@refused.test (550 5.1.1 no such user here)"
    )
    assert plain_smtp.received == []


async def test_a_wrong_password_is_an_authentication_failure(
    plain_smtp: SmtpServer, certificate: Certificate
) -> None:
    params = smtp_params(plain_smtp, certificate, to="ana@example.test", body="x")
    result = await run_node(
        "email.send", params, secrets={"SMTP_PASSWORD": "wrong"}, error_edge=True
    )
    assert result.output["failed"].startswith(
        f"SMTP server 127.0.0.1:{plain_smtp.port}: authentication failed: 535"
    )
    assert "wrong" not in result.output["failed"]
    assert plain_smtp.received == []


async def test_a_closed_port_is_a_clear_connection_error(certificate: Certificate) -> None:
    with smtp_server(certificate) as server:
        port = server.port
    params = {
        **smtp_params(server, certificate, to="ana@example.test", body="x"),
        "smtp_port": port,
    }
    result = await run_node("email.send", params, secrets=SMTP_SECRETS, error_edge=True)
    assert result.output["failed"] == (
        f"could not connect to SMTP server 127.0.0.1:{port}: connection refused"
    )


async def test_a_server_that_never_greets_times_out(certificate: Certificate) -> None:
    with silent_server() as silent:
        port = silent.port
        params = {
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "tls": "none",
            "from": "bot@example.test",
            "to": "ana@example.test",
            "timeout": "300ms",
        }
        result = await run_node("email.send", params, error_edge=True)
    assert result.output["failed"].startswith(f"SMTP server 127.0.0.1:{port}: no answer within")


async def test_an_untrusted_certificate_fails_unless_verification_is_off(
    plain_smtp: SmtpServer, certificate: Certificate
) -> None:
    params = smtp_params(plain_smtp, None, to="ana@example.test", body="x")
    result = await run_node("email.send", params, secrets=SMTP_SECRETS, error_edge=True)
    assert result.output["failed"].startswith(
        f"SMTP server 127.0.0.1:{plain_smtp.port}: TLS certificate not trusted"
    )
    unchecked = {**params, "verify_tls": False}
    result = await run_node("email.send", unchecked, secrets=SMTP_SECRETS)
    assert result.output["accepted"] == ["ana@example.test"]


async def test_starttls_asked_of_a_server_without_it_is_refused_not_sent_in_clear(
    certificate: Certificate,
) -> None:
    with smtp_server(certificate, tls="none") as server:
        params = {**smtp_params(server, certificate, to="a@example.test"), "tls": "starttls"}
        result = await run_node("email.send", params, secrets=SMTP_SECRETS, error_edge=True)
        assert server.received == []
    assert "does not offer STARTTLS" in result.output["failed"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"to": "${input.number}"}, "email.send: params.to: 7 is not valid under any"),
        ({"to": "not an address"}, "to: 'not an address' is not an email address"),
        ({"to": "a@example.test", "subject": "${input.two_lines}"}, "subject must be one line"),
        ({"to": "a@example.test", "headers": {"From": "x@y.test"}}, "headers: From is set from"),
        (
            {
                "to": "a@example.test",
                "attachments": [{"filename": "a", "content": "%%%", "encoding": "base64"}],
            },
            "attachments[0].content is not valid base64",
        ),
        ({"to": "${input.many}"}, "email.send: params.to: ["),
    ],
)
async def test_bad_values_known_only_at_run_time_fail_clearly_before_connecting(
    certificate: Certificate, params: dict[str, object], message: str
) -> None:
    with silent_server() as silent:
        port = silent.port
        full = {"smtp_host": "127.0.0.1", "smtp_port": port, "from": "b@example.test", **params}
        result = await run_node(
            "email.send",
            full,
            error_edge=True,
            run_input={
                "number": 7,
                "two_lines": "a\r\nBcc: victim@example.test",
                "many": [f"u{i}@example.test" for i in range(101)],
            },
        )
    assert message in result.output["failed"], result.output


async def test_cancelling_the_run_mid_message_drops_the_connection_and_delivers_nothing(
    plain_smtp: SmtpServer, certificate: Certificate
) -> None:
    plain_smtp.handler.hold = threading.Event()
    params = smtp_params(plain_smtp, certificate, to="ana@example.test", body="x")
    run = asyncio.create_task(run_node("email.send", params, secrets=SMTP_SECRETS))
    assert await asyncio.to_thread(plain_smtp.handler.held.wait, HANG_GUARD)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    # The server sees the client go away while it still holds the message.
    assert await asyncio.to_thread(plain_smtp.handler.closed.wait, HANG_GUARD)
    plain_smtp.handler.hold.set()
    assert plain_smtp.received == []


async def test_a_server_that_stalls_mid_message_times_out_and_delivers_nothing(
    plain_smtp: SmtpServer, certificate: Certificate
) -> None:
    plain_smtp.handler.hold = threading.Event()
    params = smtp_params(plain_smtp, certificate, to="ana@example.test", body="x", timeout="500ms")
    result = await run_node("email.send", params, secrets=SMTP_SECRETS, error_edge=True)
    assert result.output["failed"].startswith(
        f"SMTP server 127.0.0.1:{plain_smtp.port}: no answer within 0.5s"
    )
    assert await asyncio.to_thread(plain_smtp.handler.closed.wait, HANG_GUARD)
    plain_smtp.handler.hold.set()
    assert plain_smtp.received == []


async def test_the_nodes_own_timeout_ends_the_smtp_conversation(
    plain_smtp: SmtpServer, certificate: Certificate
) -> None:
    plain_smtp.handler.hold = threading.Event()
    params = smtp_params(plain_smtp, certificate, to="ana@example.test", body="x")
    flow = flow_yaml("email.send", params, error_edge=True).replace(
        "    type: email.send\n", "    type: email.send\n    timeout: 1s\n"
    )
    result = await compile_flow(load_flow(flow)).run({}, secrets=SMTP_SECRETS)
    assert result.output["type"] == "NodeTimeout"
    assert await asyncio.to_thread(plain_smtp.handler.closed.wait, HANG_GUARD)
    plain_smtp.handler.hold.set()
    assert plain_smtp.received == []
