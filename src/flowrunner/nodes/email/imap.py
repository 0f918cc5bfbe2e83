"""A short IMAP conversation over aioimaplib, with every failure as a clear ``EmailError``.

``ImapSession`` does what ``email.receive`` needs and nothing more: connect (implicit TLS,
STARTTLS — which aioimaplib lacks, so it is done here — or none), log in, select a folder,
search by UID, fetch sizes and messages, set ``\\Seen``, log out. Each step has the node's
timeout; ``close`` drops the connection at once (on failure and on cancellation).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import ssl
from collections.abc import Awaitable, Iterable
from typing import Any, TypeVar

import aioimaplib

from flowrunner.nodes.email.connection import EmailError, TlsMode, describe_os_error

__all__ = ["ImapSession", "imap_quote", "imap_utf7"]

T = TypeVar("T")

_UID = re.compile(rb"\bUID (\d+)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")
_FLAGS = re.compile(rb"\bFLAGS \(([^)]*)\)")


class ImapSession:
    """One connection to an IMAP server; always ``close`` it (``async with`` does)."""

    def __init__(
        self, host: str, port: int, tls: TlsMode, context: ssl.SSLContext | None, timeout: float
    ) -> None:
        self.host, self.port, self.tls = host, port, tls
        self.where = f"IMAP server {host}:{port}"
        self._context = context
        self._timeout = timeout
        self._client: aioimaplib.IMAP4 | None = None

    async def __aenter__(self) -> ImapSession:
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            await self._close_gracefully()
        else:
            self.close()

    # --- the conversation ------------------------------------------------------------------

    async def open(self) -> None:
        if self.tls == "implicit":
            self._client = aioimaplib.IMAP4_SSL(
                self.host, self.port, timeout=self._timeout, ssl_context=self._context
            )
        else:
            self._client = aioimaplib.IMAP4(self.host, self.port, timeout=self._timeout)
        await self._step("connect", self._client.wait_hello_from_server())
        if self.tls == "starttls":
            await self._starttls()

    async def login(self, username: str, password: str) -> None:
        protocol = self._protocol()
        if self.tls == "none" and "LOGINDISABLED" in protocol.capabilities:
            raise EmailError(
                f"{self.where} refuses to log in without TLS (LOGINDISABLED): "
                "use tls: starttls or implicit",
                reason="auth",
            )
        response = await self._step("login", protocol.login(imap_quote(username), password))
        if response.result != "OK":
            raise EmailError(
                f"{self.where}: authentication failed: {_text(response)}", reason="auth"
            )

    async def select(self, folder: str, *, readonly: bool) -> None:
        protocol = self._protocol()
        mailbox = imap_quote(imap_utf7(folder))
        if readonly:
            command = aioimaplib.Command("EXAMINE", protocol.new_tag(), mailbox, loop=protocol.loop)
            response = await self._step("examine", protocol.execute(command))
            if response.result == "OK":
                protocol.state = aioimaplib.SELECTED
        else:
            response = await self._step("select", protocol.select(mailbox))
        if response.result != "OK":
            raise EmailError(
                f"{self.where}: cannot open folder {folder!r}: {_text(response)}",
                reason="folder",
            )

    async def search(self, criteria: list[str], charset: str | None) -> list[int]:
        """UIDs matching ``criteria``, ascending."""
        response = await self._step(
            "search", self._protocol().search(*criteria, charset=charset, by_uid=True)
        )
        self._check(response, "search")
        uids: list[int] = []
        # aioimaplib strips "* SEARCH" from the untagged lines; the last is the status text.
        for line in response.lines[:-1]:
            words = bytes(line).split()
            if words and words[0] == b"SEARCH":
                words = words[1:]
            if words and all(w.isdigit() for w in words):
                uids.extend(int(w) for w in words)
        return sorted(set(uids))

    async def sizes(self, uids: Iterable[int]) -> dict[int, int]:
        """Each message's size in bytes (RFC822.SIZE), by UID."""
        response = await self._step(
            "fetch", self._protocol().fetch(_uid_set(uids), "(UID RFC822.SIZE)", by_uid=True)
        )
        self._check(response, "fetch")
        found: dict[int, int] = {}
        for line in response.lines:
            uid, size = _UID.search(line), _SIZE.search(line)
            if uid and size:
                found[int(uid.group(1))] = int(size.group(1))
        return found

    async def fetch(self, uid: int, *, headers_only: bool = False) -> tuple[bytes, list[str]]:
        """``(raw message, flags)``; without setting ``\\Seen`` (BODY.PEEK)."""
        part = "BODY.PEEK[HEADER]" if headers_only else "BODY.PEEK[]"
        response = await self._step(
            "fetch", self._protocol().fetch(str(uid), f"(UID FLAGS {part})", by_uid=True)
        )
        self._check(response, "fetch")
        raw: bytes | None = None
        flags: list[str] = []
        for line in response.lines:
            if isinstance(line, bytearray) and raw is None:
                raw = bytes(line)
            elif isinstance(line, bytes) and (match := _FLAGS.search(line)):
                # \\Recent belongs to this session, not to the message.
                flags = [
                    f for f in match.group(1).decode(errors="replace").split() if f != "\\Recent"
                ]
        if raw is None:
            raise EmailError(
                f"{self.where}: message {uid} vanished before it could be read",
                reason="protocol",
            )
        return raw, flags

    async def mark_seen(self, uids: Iterable[int]) -> None:
        response = await self._step(
            "store",
            self._protocol().store(_uid_set(uids), "+FLAGS.SILENT", r"(\Seen)", by_uid=True),
        )
        self._check(response, "store")

    async def logout(self) -> None:
        # The work is done; a server that hangs up without a goodbye changes nothing.
        with contextlib.suppress(EmailError):
            await self._step("logout", self._protocol().logout())

    def close(self) -> None:
        """Drop the connection now, TLS included (on failure and on cancellation)."""
        client, self._client = self._client, None
        if client is None:
            return
        if not client._client_task.done():
            client._client_task.cancel()  # still connecting
        transport = client.protocol.transport
        if transport is not None:
            transport.abort()

    async def _close_gracefully(self) -> None:
        """Close and wait (briefly) until the socket is gone: a TLS close is asynchronous,
        and a socket left to the garbage collector is a leak warning."""
        client = self._client
        transport = client.protocol.transport if client is not None else None
        if client is None or transport is None or transport.is_closing():
            self.close()
            return
        lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_lost(_exc: Exception | None) -> None:
            if not lost.done():
                lost.set_result(None)

        client.protocol.conn_lost_cb = on_lost
        self._client = None
        transport.close()
        try:
            async with asyncio.timeout(min(self._timeout, 5.0)):
                await lost
        except TimeoutError:
            transport.abort()

    # --- helpers ---------------------------------------------------------------------------

    async def _starttls(self) -> None:
        protocol = self._protocol()
        if "STARTTLS" not in protocol.capabilities:
            raise EmailError(
                f"{self.where} does not offer STARTTLS (tls: starttls); use tls: implicit or none",
                reason="tls",
            )
        command = aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)
        response = await self._step("starttls", protocol.execute(command))
        self._check(response, "starttls")
        loop = asyncio.get_running_loop()
        context = self._context or ssl.create_default_context()
        protocol.transport = await self._step(
            "starttls",
            loop.start_tls(protocol.transport, protocol, context, server_hostname=self.host),
        )
        # What the server offers may change once the connection is private (RFC 3501 6.2.1).
        await self._step("capability", protocol.capability())

    def _protocol(self) -> aioimaplib.IMAP4ClientProtocol:
        assert self._client is not None, "open() first"  # a programming error, not input
        return self._client.protocol

    async def _step(self, name: str, operation: Awaitable[T]) -> T:
        """Await one step of the conversation with the timeout; foreign errors translated."""
        try:
            async with asyncio.timeout(self._timeout):
                return await operation
        except TimeoutError as exc:
            raise EmailError(
                f"{self.where}: no answer to {name} within {self._timeout:g}s", reason="timeout"
            ) from exc
        except aioimaplib.CommandTimeout as exc:
            raise EmailError(
                f"{self.where}: no answer to {name} within {self._timeout:g}s", reason="timeout"
            ) from exc
        except ssl.SSLError as exc:
            raise EmailError(f"{self.where}: {describe_os_error(exc)}", reason="tls") from exc
        except OSError as exc:
            verb = "could not connect to" if name == "connect" else "lost the connection to"
            raise EmailError(
                f"{verb} {self.where}: {describe_os_error(exc)}", reason="connect"
            ) from exc
        except ValueError as exc:  # aioimaplib refuses CR, LF and NUL in a command's arguments
            raise EmailError(
                f"{self.where}: {name}: a value holds a line break or NUL", reason="invalid_params"
            ) from exc
        except aioimaplib.AioImapException as exc:
            raise EmailError(
                f"{self.where}: {name} failed: {getattr(exc, 'reason', exc)}", reason="protocol"
            ) from exc

    def _check(self, response: Any, name: str) -> None:
        if response.result != "OK":
            raise EmailError(f"{self.where}: {name} failed: {_text(response)}", reason="protocol")


def _text(response: Any) -> str:
    """The server's words in a response (the last line: the tagged status text)."""
    lines = [bytes(line) for line in response.lines if isinstance(line, bytes | bytearray)]
    text = lines[-1].decode(errors="replace") if lines else ""
    return text[:300] or str(response.result)


def _uid_set(uids: Iterable[int]) -> str:
    return ",".join(str(u) for u in uids)


def imap_quote(text: str) -> str:
    """An IMAP quoted string (RFC 3501 section 4.3)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def imap_utf7(name: str) -> str:
    """A folder name in IMAP's modified UTF-7 (RFC 3501 section 5.1.3): ``Entwürfe`` →
    ``Entw&APw-rfe``."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            data = "".join(pending).encode("utf-16-be")
            encoded = base64.b64encode(data).decode().rstrip("=").replace("/", ",")
            out.append(f"&{encoded}-")
            pending.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return "".join(out)
