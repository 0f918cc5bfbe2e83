"""What ``email.send`` and ``email.receive`` share: TLS modes, timeouts, the error they raise,
and the params schema pieces for a server connection.

A mail node's failure is an ``EmailError`` whose message names the server and what went
wrong (could not connect, TLS, authentication, timeout, refused); ``reason`` in its context
is a stable word for it. Retries and an ``error`` edge apply like for any node failure.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Literal

from flowrunner.durations import DURATION_PATTERN, parse_duration
from flowrunner.errors import ExecutionError

__all__ = [
    "DEFAULT_TIMEOUT",
    "EmailError",
    "TlsMode",
    "connection_schema",
    "server_address",
    "timeout_seconds",
    "tls_context",
]

TlsMode = Literal["implicit", "starttls", "none"]
TLS_MODES: tuple[TlsMode, ...] = ("implicit", "starttls", "none")

DEFAULT_TIMEOUT = 30.0
MAX_TIMEOUT = 600.0


class EmailError(ExecutionError):
    """A mail node could not do its job; ``reason`` says which way (see the module doc)."""

    code = "email_error"

    def __init__(self, message: str, *, reason: str, **context: Any) -> None:
        super().__init__(message, reason=reason, **context)
        self.reason = reason


def connection_schema(prefix: Literal["smtp", "imap"], default_tls: TlsMode) -> dict[str, Any]:
    """JSON Schema properties of a server connection (host, port, credentials, TLS)."""
    return {
        f"{prefix}_host": {"type": "string", "minLength": 1, "maxLength": 253},
        f"{prefix}_port": {"type": "integer", "minimum": 1, "maximum": 65535},
        "username": {"type": "string", "maxLength": 1024},
        "password": {"type": "string", "maxLength": 4096},
        "tls": {"enum": list(TLS_MODES), "default": default_tls},
        "verify_tls": {"type": "boolean", "default": True},
        "ca_cert": {"type": "string", "minLength": 1, "maxLength": 65536},
        "timeout": {
            "type": ["number", "string"],
            "exclusiveMinimum": 0,
            "pattern": DURATION_PATTERN,
        },
    }


def server_address(
    params: Mapping[str, Any], prefix: str, default_tls: TlsMode, ports: Mapping[TlsMode, int]
) -> tuple[str, int, TlsMode]:
    """``(host, port, tls)`` from resolved params; the port defaults by TLS mode."""
    tls: TlsMode = params.get("tls") or default_tls
    port = params.get(f"{prefix}_port")
    return str(params[f"{prefix}_host"]), int(port) if port is not None else ports[tls], tls


def timeout_seconds(params: Mapping[str, Any]) -> float:
    """The per-operation timeout (connect, each command), bounded."""
    value = params.get("timeout")
    if value is None:
        return DEFAULT_TIMEOUT
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise EmailError(f"timeout: {exc}", reason="invalid_params") from exc
    if seconds <= 0:
        raise EmailError("timeout must be more than 0 seconds", reason="invalid_params")
    return min(seconds, MAX_TIMEOUT)


def tls_context(params: Mapping[str, Any]) -> ssl.SSLContext:
    """A client TLS context: the system's trust store, or ``ca_cert`` (PEM) instead; with
    ``verify_tls: false``, no certificate or host name check at all."""
    ca_cert = params.get("ca_cert")
    return _context(str(ca_cert) if ca_cert else None, params.get("verify_tls") is not False)


@lru_cache(maxsize=32)
def _context(ca_cert: str | None, verify: bool) -> ssl.SSLContext:
    # Cached: loading the system's trust store reads files, and a context is safe to share
    # between connections (none is changed after it is made).
    try:
        context = ssl.create_default_context(cadata=ca_cert)
    except ssl.SSLError as exc:
        raise EmailError(
            f"ca_cert is not a PEM certificate: {exc.reason or exc}", reason="invalid_params"
        ) from exc
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def describe_os_error(exc: BaseException) -> str:
    """A short human reason for a socket-level failure."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({exc.verify_message or exc.reason})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed ({exc.reason or exc})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset by the server"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__
