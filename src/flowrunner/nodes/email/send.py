"""``email.send``: one message over SMTP (aiosmtplib).

One connection per visit: connect (implicit TLS or STARTTLS as ``tls`` says), log in when
``username`` and ``password`` are given, send, quit. Nothing else is contacted (the
original logged in to IMAP first). Cancelling the run closes the connection mid-conversation:
the server sees the client go away and delivers nothing.

Output: ``message_id`` (the Message-ID header, angle brackets included), ``accepted`` (the
envelope recipients the server took), ``refused`` (recipient → the server's reply; a message
some recipients refused is still sent to the others), ``response`` (the server's reply to the
message). Every recipient refused is a node failure.
"""

from __future__ import annotations

from typing import Any

from flowrunner.nodes.base import Call, DefinedNode, DefinedNodeType
from flowrunner.nodes.email.checks import check_params, params_validator
from flowrunner.nodes.email.compose import MAX_RECIPIENTS, compose
from flowrunner.nodes.email.connection import (
    TlsMode,
    connection_schema,
    server_address,
    timeout_seconds,
)

__all__ = ["EMAIL_SEND"]

_PORTS: dict[TlsMode, int] = {"implicit": 465, "starttls": 587, "none": 25}

_ADDRESSES = {
    "oneOf": [
        {"type": "string", "maxLength": 10_000},
        {"type": "array", "items": {"type": "string"}, "maxItems": MAX_RECIPIENTS},
    ]
}

SEND_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        **connection_schema("smtp", "starttls"),
        "from": {"type": "string", "minLength": 3},
        "to": _ADDRESSES,
        "cc": _ADDRESSES,
        "bcc": _ADDRESSES,
        "reply_to": _ADDRESSES,
        "subject": {"type": "string", "maxLength": 10_000},
        "body": {"type": "string"},
        "html": {"type": "string"},
        "charset": {"type": "string", "minLength": 1, "maxLength": 40, "default": "utf-8"},
        "headers": {
            "type": "object",
            "additionalProperties": {"type": ["string", "number", "boolean"]},
            "maxProperties": 50,
        },
        "attachments": {
            "type": "array",
            "maxItems": 20,
            "items": {
                "type": "object",
                "properties": {
                    "filename": {"type": "string", "minLength": 1, "maxLength": 255},
                    "content": {},
                    "encoding": {"enum": ["text", "base64"], "default": "text"},
                    "content_type": {"type": "string", "minLength": 3, "maxLength": 255},
                },
                "required": ["filename", "content"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["smtp_host", "from"],
    "anyOf": [{"required": ["to"]}, {"required": ["cc"]}, {"required": ["bcc"]}],
    "additionalProperties": False,
}
_VALIDATOR = params_validator(SEND_SCHEMA)
_NUMBERS = frozenset({"smtp_port"})


class EmailSendNode(DefinedNode):
    __slots__ = ()

    actions = frozenset()

    async def work(self, call: Call) -> Any:
        params = check_params("email.send", _VALIDATOR, call.params, _NUMBERS)
        composed = compose(params)
        host, port, tls = server_address(params, "smtp", "starttls", _PORTS)
        timeout = timeout_seconds(params)
        # The SMTP conversation is in smtp.py, imported by the first send: aiosmtplib
        # (~1 MB) loads with the node type otherwise, on every server.
        from flowrunner.nodes.email.smtp import deliver

        return await deliver(composed, params, host, port, tls, timeout)


EMAIL_SEND = DefinedNodeType(
    "email.send",
    "Send an email over SMTP (implicit TLS, STARTTLS or none): text and/or HTML body, "
    "attachments, cc/bcc, reply-to and custom headers. Output: message_id, accepted, refused.",
    EmailSendNode,
    SEND_SCHEMA,
)
