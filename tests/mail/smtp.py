"""aiosmtpd as the SMTP server of the email tests: STARTTLS, implicit TLS or none, with AUTH.

It refuses ``*@refused.test``, records every message it accepts and, given a ``Dovecot``,
delivers each to its recipient's mailbox there (``dovecot-lda``), so what ``email.send`` sends
is what ``email.receive`` reads, through both real servers.
"""

from __future__ import annotations

import asyncio
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.conftest import HANG_GUARD
from tests.e2e.server import free_port
from tests.mail.certificate import Certificate
from tests.mail.dovecot import Dovecot

SMTP_USER = "mailer"
SMTP_PASSWORD = 'sm"tp p@ss/1'

REFUSED_DOMAIN = "refused.test"


@dataclass
class Received:
    """One message the SMTP server accepted."""

    sender: str
    recipients: list[str]
    data: bytes
    auth_user: str | None


@dataclass
class MailHandler:
    """aiosmtpd handler: refuses ``*@refused.test``, records the rest, and delivers to
    Dovecot users (when there is a Dovecot)."""

    dovecot: Dovecot | None = None
    received: list[Received] = field(default_factory=list)
    # Set to hold DATA until released: a conversation stuck mid-message (cancellation tests).
    hold: threading.Event | None = None
    held: threading.Event = field(default_factory=threading.Event)
    closed: threading.Event = field(default_factory=threading.Event)
    # The socket of every connection accepted: the server stops only once each is closed,
    # or its loop would close with TLS transports still closing (a leak warning at a later
    # GC). Sockets, not connection_lost: a failed STARTTLS handshake never reports one.
    sockets: list[Any] = field(default_factory=list)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address.lower().endswith("@" + REFUSED_DOMAIN):
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.hold is not None:
            self.closed.clear()  # from here on: this client's connection
            self.held.set()
            while not self.hold.is_set():  # aiosmtpd's own loop: poll, don't block it
                await _nap()
        data = envelope.original_content or b""
        auth = session.auth_data
        user = auth.login.decode() if isinstance(auth, LoginPassword) else None
        self.received.append(
            Received(envelope.mail_from or "", list(envelope.rcpt_tos), data, user)
        )
        if self.dovecot is not None:
            for rcpt in envelope.rcpt_tos:
                self.dovecot.deliver(rcpt, data, envelope.mail_from or "")
        return "250 2.0.0 Message accepted for delivery"


async def _nap() -> None:
    await asyncio.sleep(0.02)


class _Authenticator:
    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == SMTP_USER.encode()
            and auth_data.password == SMTP_PASSWORD.encode()
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data)


class _TrackingSMTP(SMTP):
    """Keeps each connection's socket, and notes when one closes (cancellation tests wait)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Again after STARTTLS, with a TLS transport over the same socket.
        sock = transport.get_extra_info("socket")
        sockets = self.event_handler.sockets
        if sock is not None and all(known is not sock for known in sockets):
            sockets.append(sock)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        super().connection_lost(error)
        self.event_handler.closed.set()


class _Controller(Controller):
    def factory(self) -> SMTP:
        with warnings.catch_warnings():
            # AUTH without STARTTLS: on purpose for `tls: implicit` (the whole session is TLS,
            # which aiosmtpd does not count) and `tls: none`.
            warnings.simplefilter("ignore", UserWarning)
            return _TrackingSMTP(self.handler, **self.SMTP_kwargs)


class SmtpServer:
    """aiosmtpd on a free port: ``tls`` is ``starttls`` (offered and required before AUTH),
    ``implicit`` (TLS from the first byte) or ``none`` (no TLS; AUTH over plain text)."""

    def __init__(
        self,
        certificate: Certificate,
        tls: str = "starttls",
        dovecot: Dovecot | None = None,
        auth_required: bool = True,
    ) -> None:
        self.handler = MailHandler(dovecot)
        self.port = free_port()
        self.tls = tls
        smtp: dict[str, Any] = {
            "server_hostname": "mail.example.test",
            "auth_required": auth_required,
            "authenticator": _Authenticator(),
            "auth_require_tls": tls == "starttls",
        }
        if tls == "starttls":
            smtp.update(tls_context=certificate.server_context(), require_starttls=True)
        elif tls == "implicit":
            smtp["ssl_context"] = certificate.server_context()
        self._controller = _Controller(
            self.handler, hostname="127.0.0.1", port=self.port, ready_timeout=HANG_GUARD, **smtp
        )

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        if self.handler.hold is not None:
            self.handler.hold.set()
        # The clients hang up (after QUIT, or dropping the connection): wait for every
        # socket to be closed before the controller closes its loop.
        deadline = time.monotonic() + HANG_GUARD
        while not self._all_closed() and time.monotonic() < deadline:
            time.sleep(0.01)
        all_closed = self._all_closed()
        self._controller.stop()
        assert all_closed, "an SMTP client never hung up"

    def _all_closed(self) -> bool:
        return all(sock.fileno() == -1 for sock in self.handler.sockets)


@contextmanager
def smtp_server(certificate: Certificate, **kwargs: Any) -> Iterator[SmtpServer]:
    server = SmtpServer(certificate, **kwargs)
    server.start()
    try:
        yield server
    finally:
        server.stop()
