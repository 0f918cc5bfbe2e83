"""Signature schemes of inbound webhooks: who may start a run through a trigger's URL.

Each scheme checks the raw request bytes (never a re-encoded body) against a key from the
vault, in constant time, and names the sender's delivery id when the scheme has one (it
becomes the run's idempotency key). Schemes with a signed timestamp refuse one outside
``tolerance`` (default 5 minutes) on either side, which bounds replays.

| scheme     | headers                                             | signed content            |
|------------|-----------------------------------------------------|---------------------------|
| standard   | webhook-id, webhook-timestamp, webhook-signature    | ``{id}.{ts}.{body}``      |
| github     | X-Hub-Signature-256 (``sha256=<hex>``)              | body                      |
| stripe     | Stripe-Signature (``t=..,v1=..``)                   | ``{t}.{body}``            |
| slack      | X-Slack-Request-Timestamp, X-Slack-Signature (v0=)  | ``v0:{ts}:{body}``        |
| hmac       | ``header`` (+ ``timestamp_header``)                 | body or ``{ts}.{body}``   |
| token      | ``header`` (default Authorization, Bearer allowed)  | — (the header is the key) |
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from flowrunner.durations import parse_duration

DEFAULT_TOLERANCE = 300.0
_ALGORITHMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}


class VerificationFailed(Exception):
    """The request is not from the holder of the key; ``reason`` is safe to log and audit."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Verified:
    delivery_id: str | None = None


def verify(
    config: Mapping[str, Any],
    key: str | None,
    raw: bytes,
    headers: Mapping[str, str],
    now: float,
) -> Verified:
    """Check a request; ``headers`` has lower-case names. Raises ``VerificationFailed``."""
    scheme = config.get("scheme", "none")
    tolerance = parse_duration(config["tolerance"]) if "tolerance" in config else DEFAULT_TOLERANCE
    if scheme != "none" and not key:
        raise VerificationFailed("the trigger's verification secret is missing from the vault")
    secret = key or ""
    if scheme == "none":
        found = None
    elif scheme == "standard":
        found = _standard(secret, raw, headers, now, tolerance)
    elif scheme == "github":
        signature = _header(headers, "x-hub-signature-256")
        expected = "sha256=" + _hmac_hex(secret.encode(), raw, "sha256")
        _same(signature, expected)
        found = headers.get("x-github-delivery")
    elif scheme == "stripe":
        found = _stripe(secret, raw, headers, now, tolerance)
    elif scheme == "slack":
        ts = _header(headers, "x-slack-request-timestamp")
        _fresh(ts, now, tolerance)
        signed = b"v0:" + ts.encode() + b":" + raw
        _same(_header(headers, "x-slack-signature"), "v0=" + _hmac_hex(secret.encode(), signed))
        found = None
    elif scheme == "hmac":
        found = _generic(config, secret, raw, headers, now, tolerance)
    elif scheme == "token":
        name = str(config.get("header") or "authorization").lower()
        value = _header(headers, name)
        if name == "authorization" and value.lower().startswith("bearer "):
            value = value[7:]
        _same(value, secret)
        found = None
    else:
        raise VerificationFailed(f"unknown scheme {scheme!r}")
    id_header = config.get("delivery_id_header")
    if id_header:
        found = headers.get(str(id_header).lower()) or found
    return Verified(found[:255] if found else None)


def _standard(
    secret: str, raw: bytes, headers: Mapping[str, str], now: float, tolerance: float
) -> str:
    msg_id = _header(headers, "webhook-id")
    ts = _header(headers, "webhook-timestamp")
    _fresh(ts, now, tolerance)
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise VerificationFailed("the secret is not a Standard Webhooks key (whsec_...)") from exc
    signed = msg_id.encode() + b"." + ts.encode() + b"." + raw
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    # Several space-separated signatures (during a key rotation); any v1 one may match.
    for item in _header(headers, "webhook-signature").split():
        version, _, value = item.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode(), expected.encode()):
            return msg_id
    raise VerificationFailed("signature mismatch")


def _stripe(
    secret: str, raw: bytes, headers: Mapping[str, str], now: float, tolerance: float
) -> str | None:
    fields = [part.partition("=") for part in _header(headers, "stripe-signature").split(",")]
    ts = next((v for k, _, v in fields if k.strip() == "t"), None)
    if ts is None:
        raise VerificationFailed("Stripe-Signature has no timestamp (t=)")
    _fresh(ts, now, tolerance)
    expected = _hmac_hex(secret.encode(), ts.encode() + b"." + raw)
    if not any(
        k.strip() == "v1" and hmac.compare_digest(v.strip().encode(), expected.encode())
        for k, _, v in fields
    ):
        raise VerificationFailed("signature mismatch")
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return str(event["id"]) if isinstance(event, dict) and event.get("id") else None


def _generic(
    config: Mapping[str, Any],
    secret: str,
    raw: bytes,
    headers: Mapping[str, str],
    now: float,
    tolerance: float,
) -> str | None:
    signature = _header(headers, str(config["header"]).lower())
    signed = raw
    ts_header = config.get("timestamp_header")
    if ts_header:
        ts = _header(headers, str(ts_header).lower())
        _fresh(ts, now, tolerance)
        signed = ts.encode() + b"." + raw
    digest = hmac.new(
        secret.encode(), signed, _ALGORITHMS[str(config.get("algorithm", "sha256"))]
    ).digest()
    encoded = (
        base64.b64encode(digest).decode() if config.get("encoding") == "base64" else digest.hex()
    )
    _same(signature, str(config.get("prefix", "")) + encoded)
    return None


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if not value:
        raise VerificationFailed(f"missing header {name}")
    return value


def _fresh(ts: str, now: float, tolerance: float) -> None:
    try:
        when = int(ts.strip())
    except ValueError as exc:
        raise VerificationFailed("the timestamp is not a Unix time in seconds") from exc
    if abs(now - when) > tolerance:
        raise VerificationFailed(f"timestamp outside the tolerance of {tolerance:g}s")


def _same(given: str, expected: str) -> None:
    if not hmac.compare_digest(given.strip().encode(), expected.encode()):
        raise VerificationFailed("signature mismatch")


def _hmac_hex(key: bytes, data: bytes, algorithm: str = "sha256") -> str:
    return hmac.new(key, data, _ALGORITHMS[algorithm]).hexdigest()
