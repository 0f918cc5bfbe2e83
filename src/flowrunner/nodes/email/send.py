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

import asyncio
import contextlib
import ssl
from typing import Any

import aiosmtplib

from flowrunner.nodes.base import Call, DefinedNode, DefinedNodeType
from flowrunner.nodes.email.checks import check_params, params_validator
from flowrunner.nodes.email.compose import MAX_RECIPIENTS, compose
from flowrunner.nodes.email.connection import (
    EmailError,
    TlsMode,
    connection_schema,
    describe_os_error,
    server_address,
    timeout_seconds,
    tls_context,
)
from flowrunner.nodes.email.slots import connection_slot

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
        where = f"SMTP server {host}:{port}"
        timeout = timeout_seconds(params)
        username, password = params.get("username"), params.get("password")
        smtp = _SMTP(
            hostname=host,
            port=port,
            username=username if username and password is not None else None,
            password=password if username and password is not None else None,
            use_tls=tls == "implicit",
            start_tls=tls == "starttls",
            tls_context=tls_context(params) if tls != "none" else None,
            timeout=timeout,
        )
        try:
            async with connection_slot():
                await smtp.connect()
                refused, response = await smtp.send_message(
                    composed.message, sender=composed.sender, recipients=composed.recipients
                )
                # Sent already; a server that hangs up without a goodbye changes nothing.
                with contextlib.suppress(aiosmtplib.SMTPException):
                    await smtp.quit()
        except aiosmtplib.SMTPException as exc:
            raise _translate(exc, where, timeout) from exc
        except (OSError, ssl.SSLError) as exc:
            raise EmailError(f"{where}: {describe_os_error(exc)}", reason="connect") from exc
        finally:
            # Also on cancellation: drop the connection instead of finishing the message.
            smtp.close()
            # The socket is closed on the loop's next iteration (``_SMTP.close``): let it run
            # before the visit ends, or the socket could outlive it (and, in a test, its loop).
            await asyncio.sleep(0)
        return {
            "message_id": composed.message_id,
            "accepted": [r for r in composed.recipients if r not in refused],
            "refused": {r: _reply(reply.code, reply.message) for r, reply in refused.items()},
            "response": response,
        }


class _SMTP(aiosmtplib.SMTP):
    """aiosmtplib's client whose every close (after QUIT, on a failure, on cancellation)
    drops the connection: a TLS close would wait for the server's close_notify, leaving the
    socket open past the visit for as long as the server takes. After QUIT was answered, or
    once the conversation failed, nothing more is owed to the server."""

    def close(self) -> None:
        transport = self.transport
        super().close()
        if isinstance(transport, asyncio.Transport):
            transport.abort()


def _reply(code: int, message: str) -> str:
    return f"{code} {message}".strip()


def _translate(exc: aiosmtplib.SMTPException, where: str, timeout: float) -> EmailError:
    """aiosmtplib's errors → one clear EmailError per way of failing."""
    cause = _ssl_cause(exc)
    if cause is not None:
        return EmailError(f"{where}: {describe_os_error(cause)}", reason="tls")
    if isinstance(exc, aiosmtplib.SMTPTimeoutError):
        return EmailError(
            f"{where}: no answer within {timeout:g}s ({exc.message})", reason="timeout"
        )
    if isinstance(exc, aiosmtplib.SMTPConnectResponseError):
        return EmailError(
            f"{where} refused the connection: {_reply(exc.code, exc.message)}",
            reason="connect",
        )
    if isinstance(exc, aiosmtplib.SMTPConnectError):
        os_error = exc.__cause__
        detail = describe_os_error(os_error) if os_error is not None else exc.message
        return EmailError(f"could not connect to {where}: {detail}", reason="connect")
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return EmailError(
            f"{where}: authentication failed: {_reply(exc.code, exc.message)}", reason="auth"
        )
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refused = ", ".join(f"{r.recipient} ({_reply(r.code, r.message)})" for r in exc.recipients)
        return EmailError(f"{where} refused every recipient: {refused}", reason="refused")
    if isinstance(exc, aiosmtplib.SMTPSenderRefused):
        return EmailError(
            f"{where} refused the sender {exc.sender}: {_reply(exc.code, exc.message)}",
            reason="refused",
        )
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return EmailError(
            f"{where} rejected the message: {_reply(exc.code, exc.message)}", reason="refused"
        )
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected):
        return EmailError(f"{where} closed the connection: {exc.message}", reason="connect")
    message = exc.message if hasattr(exc, "message") else str(exc)
    if "STARTTLS" in message:
        return EmailError(
            f"{where} does not offer STARTTLS (tls: starttls); use tls: implicit or none",
            reason="tls",
        )
    if "AUTH" in message:
        return EmailError(
            f"{where} does not offer authentication (AUTH) here: {message}", reason="auth"
        )
    return EmailError(f"{where}: {message}", reason="protocol")


def _ssl_cause(exc: BaseException) -> ssl.SSLError | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


EMAIL_SEND = DefinedNodeType(
    "email.send",
    "Send an email over SMTP (implicit TLS, STARTTLS or none): text and/or HTML body, "
    "attachments, cc/bcc, reply-to and custom headers. Output: message_id, accepted, refused.",
    EmailSendNode,
    SEND_SCHEMA,
)
