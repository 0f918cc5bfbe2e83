"""A raw message (RFC 5322 bytes) → the JSON ``email.receive`` outputs (pure: no I/O).

Headers are decoded (RFC 2047 encoded words, RFC 2231 file names), bodies from their
transfer encoding and charset. A body in an unknown or wrong charset is decoded as UTF-8 with
replacement characters rather than failing the run: one odd message must not hide the rest.
"""

from __future__ import annotations

import base64
import email
import email.policy
from email.header import decode_header, make_header
from email.message import EmailMessage, Message, MIMEPart
from typing import Any

__all__ = ["parse_message"]


def parse_message(
    raw: bytes, *, include_attachments: bool, max_attachment_bytes: int
) -> dict[str, Any]:
    """The message's headers, ``text``, ``html`` and ``attachments``."""
    # Text as a reader writes it: LF line ends (IMAP hands out the wire form, CRLF). Binary
    # parts are safe: they travel in base64 (or quoted-printable), where line ends are noise.
    message = email.message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=email.policy.default)
    assert isinstance(message, EmailMessage)  # policy.default always makes one
    text_part = _body(message, "plain")
    html_part = _body(message, "html")
    return {
        "message_id": _header(message, "message-id") or None,
        "from": _header(message, "from") or None,
        "to": _address_list(message, "to"),
        "cc": _address_list(message, "cc"),
        "reply_to": _address_list(message, "reply-to"),
        "subject": _header(message, "subject"),
        "date": _date(message),
        "text": _text(text_part) if text_part is not None else None,
        "html": _text(html_part) if html_part is not None else None,
        "attachments": [
            _attachment(part, include_attachments, max_attachment_bytes)
            for part in _attachments(message, (text_part, html_part))
        ],
    }


def _header(message: EmailMessage, name: str) -> str:
    try:
        value = message.get(name)
        return str(value) if value is not None else ""
    except (ValueError, IndexError, TypeError, LookupError):
        # A header the modern parser chokes on: decode its encoded words the old way.
        raw = Message.get(message, name)
        if raw is None:
            return ""
        try:
            return str(make_header(decode_header(str(raw))))
        except (ValueError, LookupError, UnicodeDecodeError):
            return str(raw)


def _address_list(message: EmailMessage, name: str) -> list[str]:
    try:
        header = message.get(name)
        if header is None:
            return []
        addresses = getattr(header, "addresses", None)
        if addresses is None:
            return [str(header)]
        return [str(a) for a in addresses]
    except (ValueError, IndexError, TypeError, LookupError):
        text = _header(message, name)
        return [text] if text else []


def _date(message: EmailMessage) -> str | None:
    try:
        header = message.get("date")
        when = getattr(header, "datetime", None)
    except (ValueError, IndexError, TypeError, OverflowError):
        return None
    return when.isoformat() if when is not None else None


def _body(message: EmailMessage, subtype: str) -> MIMEPart | None:
    try:
        part = message.get_body(preferencelist=(subtype,))
    except (KeyError, ValueError, TypeError):
        return None
    if part is None or part.get_content_subtype() != subtype:
        return None
    return part


def _text(part: MIMEPart) -> str:
    try:
        content = part.get_content()
        if isinstance(content, str):
            return content
    except (LookupError, UnicodeDecodeError, ValueError, AssertionError):
        pass  # an unknown charset, or a body that does not match the one declared
    payload = part.get_payload(decode=True)
    return payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else ""


def _attachments(message: EmailMessage, bodies: tuple[MIMEPart | None, ...]) -> list[MIMEPart]:
    """Every part with a file name or an ``attachment`` disposition, but the bodies."""
    body_ids = {id(b) for b in bodies if b is not None}
    found: list[MIMEPart] = []
    for part in message.walk():
        if part.is_multipart() or id(part) in body_ids or part is message:
            continue
        assert isinstance(part, MIMEPart)
        if part.get_content_disposition() == "attachment" or part.get_filename():
            found.append(part)
    return found


def _attachment(part: MIMEPart, include: bool, max_bytes: int) -> dict[str, Any]:
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    entry: dict[str, Any] = {
        "filename": _filename(part),
        "content_type": part.get_content_type(),
        "size": len(data),
    }
    if not include:
        return entry
    if len(data) > max_bytes:
        entry["content"] = None
        entry["skipped"] = f"larger than max_attachment_bytes ({max_bytes})"
    else:
        entry["content"] = base64.b64encode(data).decode()
    return entry


def _filename(part: MIMEPart) -> str | None:
    try:
        name = part.get_filename()
    except (ValueError, LookupError):
        return None
    if name is None:
        return None
    # Some mailers put RFC 2047 encoded words in the file name parameter (not the standard).
    if "=?" in name:
        try:
            return str(make_header(decode_header(name)))
        except (ValueError, LookupError, UnicodeDecodeError):
            return name
    return name
