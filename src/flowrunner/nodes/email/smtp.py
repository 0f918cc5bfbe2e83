"""The SMTP conversation of ``email.send`` (aiosmtplib), imported by the first send."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Mapping
from typing import Any

import aiosmtplib

from flowrunner.nodes.email.compose import Composed
from flowrunner.nodes.email.connection import (
    EmailError,
    TlsMode,
    describe_os_error,
    tls_context,
)
from flowrunner.nodes.email.slots import connection_slot


async def deliver(
    composed: Composed,
    params: Mapping[str, Any],
    host: str,
    port: int,
    tls: TlsMode,
    reply_timeout: float,
) -> dict[str, Any]:
    """Connect, log in when asked, send ``composed``, quit; the node's output. Each step
    waits ``reply_timeout`` seconds at most for the server."""
    where = f"SMTP server {host}:{port}"
    username, password = params.get("username"), params.get("password")
    smtp = _SMTP(
        hostname=host,
        port=port,
        username=username if username and password is not None else None,
        password=password if username and password is not None else None,
        use_tls=tls == "implicit",
        start_tls=tls == "starttls",
        tls_context=tls_context(params) if tls != "none" else None,
        timeout=reply_timeout,
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
        raise _translate(exc, where, reply_timeout) from exc
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
