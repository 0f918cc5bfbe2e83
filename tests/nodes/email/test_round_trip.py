"""What ``email.send`` sends through aiosmtpd, Dovecot stores and ``email.receive`` reads
back identical: one flow, two real servers."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import yaml

from flowrunner.definition import compile_flow, load_flow
from tests.mail import Certificate, Dovecot, SmtpServer
from tests.nodes.email.flows import SMTP_SECRETS, imap_params, smtp_params

PNG = bytes(range(256)) * 4
SUBJECT = "Grüße aus Köln — 東京 ✓"


def _flow(send: dict[str, Any], receive: dict[str, Any]) -> str:
    return yaml.safe_dump(
        {
            "metadata": {"name": "Round trip"},
            "nodes": {
                "send": {"type": "email.send", "params": send, "next": {"default": "read"}},
                "read": {"type": "email.receive", "params": receive},
            },
        },
        allow_unicode=True,
    )


@pytest.mark.parametrize(
    ("charset", "body"),
    [("utf-8", "Hallo Ana,\nschöne Grüße — 東京.\n"), ("iso-8859-1", "Schöne Grüße, ça va?\n")],
)
async def test_a_sent_message_is_read_back_identical(
    smtp: SmtpServer,
    imap_server: Dovecot,
    certificate: Certificate,
    mailbox: tuple[str, str],
    charset: str,
    body: str,
) -> None:
    user, password = mailbox
    send = smtp_params(
        smtp,
        certificate,
        to=f"Ana Müller <{user}>",
        subject=SUBJECT,
        body=body,
        html="<p>Schöne <b>Grüße</b></p>\n",
        charset=charset,
        attachments=[
            {"filename": "report.csv", "content": "${input.csv}", "content_type": "text/csv"},
            {
                "filename": "bild.png",
                "content": base64.b64encode(PNG).decode(),
                "encoding": "base64",
            },
        ],
    )
    receive = imap_params(imap_server, certificate, user, include_attachments=True)
    definition = load_flow(_flow(send, receive))
    result = await compile_flow(definition).run(
        {"csv": "name,city\nJürgen,Köln\n"},
        secrets={**SMTP_SECRETS, "IMAP_PASSWORD": password},
    )

    sent = result.results["send"]
    [message] = result.output
    assert message["message_id"] == sent["message_id"]
    assert message["subject"] == SUBJECT
    assert message["from"] == "Flowrunner Bot <bot@example.test>"
    assert message["to"] == [f"Ana Müller <{user}>"]
    assert message["text"] == body
    assert message["html"] == "<p>Schöne <b>Grüße</b></p>\n"
    assert message["attachments"] == [
        {
            "filename": "report.csv",
            "content_type": "text/csv",
            "size": len("name,city\nJürgen,Köln\n".encode()),
            "content": base64.b64encode("name,city\nJürgen,Köln\n".encode()).decode(),
        },
        {
            "filename": "bild.png",
            "content_type": "image/png",
            "size": len(PNG),
            "content": base64.b64encode(PNG).decode(),
        },
    ]
    # The message really was written in the charset asked for.
    [received] = smtp.received
    assert f'text/plain; charset="{charset}"'.encode() in received.data.lower()
    # Each node's output is also the original's shared.email_result (the last one wins).
    assert result.shared["email_result"] is result.output
