"""``email.send``'s params → the MIME message and its envelope (pure: no I/O).

The message is ``text`` (``body``), ``html`` or both (``multipart/alternative``), with
attachments after them (``multipart/mixed``). Headers with non-ASCII text (the subject,
display names) are RFC 2047-encoded by the standard library's ``email`` package; ``Bcc``
recipients are in the envelope only, never in a header.
"""

from __future__ import annotations

import base64
import binascii
import json
import mimetypes
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, getaddresses, make_msgid
from typing import Any

from flowrunner.nodes.email.connection import EmailError

__all__ = ["MAX_ATTACHMENT_BYTES", "MAX_RECIPIENTS", "Composed", "compose"]

MAX_RECIPIENTS = 100
MAX_ATTACHMENTS = 20
MAX_ATTACHMENT_BYTES = 10 << 20  # all attachments together, decoded
MAX_BODY_CHARS = 5_000_000
# Headers the node writes itself: `headers` may not replace them (a second From or a
# Content-Type would make a different message than the params say).
_OWN_HEADERS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "reply-to",
        "date",
        "message-id",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "content-disposition",
    }
)
_HEADER_NAME = re.compile(r"^[!-9;-~]+$")  # RFC 5322 ftext: printable ASCII but ':'


@dataclass(frozen=True, slots=True)
class Composed:
    message: EmailMessage
    sender: str
    recipients: list[str]  # To + Cc + Bcc, each once, in that order

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])


def compose(params: Mapping[str, Any]) -> Composed:
    """The message and envelope for checked params; EmailError naming a bad value."""
    sender = _addresses(params.get("from"), "from")
    if len(sender) != 1:
        raise EmailError(f"from must be one address, got {len(sender)}", reason="invalid_params")
    to = _addresses(params.get("to"), "to")
    cc = _addresses(params.get("cc"), "cc")
    bcc = _addresses(params.get("bcc"), "bcc")
    recipients = list(dict.fromkeys(a.addr_spec for a in (*to, *cc, *bcc)))
    if not recipients:
        raise EmailError("no recipient: give to, cc or bcc", reason="invalid_params")
    if len(recipients) > MAX_RECIPIENTS:
        raise EmailError(
            f"{len(recipients)} recipients, more than the {MAX_RECIPIENTS} allowed per message",
            reason="invalid_params",
        )

    message = EmailMessage(policy=SMTP)
    message["From"] = sender[0]
    if to:
        message["To"] = to
    if cc:
        message["Cc"] = cc
    reply_to = _addresses(params.get("reply_to"), "reply_to")
    if reply_to:
        message["Reply-To"] = reply_to
    message["Subject"] = _one_line(params.get("subject") or "", "subject")
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=sender[0].domain or None)
    for name, value in (params.get("headers") or {}).items():
        _check_header_name(name)
        message[name] = _one_line(str(value), f"headers.{name}")

    charset = str(params.get("charset") or "utf-8")
    body, html = params.get("body"), params.get("html")
    if len(str(body or "")) + len(str(html or "")) > MAX_BODY_CHARS:
        raise EmailError(
            f"body and html are over {MAX_BODY_CHARS} characters together", reason="too_large"
        )
    try:
        if body is not None or html is None:
            message.set_content(str(body or ""), charset=charset)
            if html is not None:
                message.add_alternative(str(html), subtype="html", charset=charset)
        else:
            message.set_content(str(html), subtype="html", charset=charset)
    except (LookupError, UnicodeEncodeError) as exc:
        raise EmailError(
            f"the body cannot be written in charset {charset!r}: {exc}", reason="invalid_params"
        ) from exc

    total = 0
    attachments = params.get("attachments") or []
    if len(attachments) > MAX_ATTACHMENTS:
        raise EmailError(
            f"{len(attachments)} attachments, more than the {MAX_ATTACHMENTS} allowed",
            reason="invalid_params",
        )
    for index, spec in enumerate(attachments):
        data, maintype, subtype = _attachment(spec, index)
        total += len(data)
        if total > MAX_ATTACHMENT_BYTES:
            raise EmailError(
                f"attachments are over {MAX_ATTACHMENT_BYTES} bytes together",
                reason="too_large",
            )
        message.add_attachment(
            data, maintype=maintype, subtype=subtype, filename=str(spec["filename"])
        )
    return Composed(message, sender[0].addr_spec, recipients)


def _addresses(value: Any, param: str) -> list[Address]:
    """Addresses in a string ("a@x.test, Bo <b@x.test>") or a list of such strings."""
    if value is None or value == "":
        return []
    items: Sequence[Any] = value if isinstance(value, list) else [value]
    found: list[Address] = []
    for item in items:
        text = _one_line(str(item), param)
        if "@" not in text:
            raise EmailError(f"{param}: {text!r} is not an email address", reason="invalid_params")
        for name, addr in getaddresses([text]):
            if not addr:
                continue
            local, at, domain = addr.rpartition("@")
            if not at or not local or not domain or " " in addr:
                raise EmailError(
                    f"{param}: {addr!r} is not an email address", reason="invalid_params"
                )
            try:
                found.append(Address(display_name=name, username=local, domain=domain))
            except (ValueError, IndexError) as exc:
                raise EmailError(
                    f"{param}: {addr!r} is not an email address", reason="invalid_params"
                ) from exc
        if not found and text.strip():
            raise EmailError(f"{param}: {text!r} is not an email address", reason="invalid_params")
    return found


def _one_line(text: str, param: str) -> str:
    # A line break in a header value would start a new header: header injection.
    if "\r" in text or "\n" in text:
        raise EmailError(f"{param} must be one line (no line breaks)", reason="invalid_params")
    return text


def _check_header_name(name: str) -> None:
    if not _HEADER_NAME.match(name):
        raise EmailError(f"headers: {name!r} is not a header name", reason="invalid_params")
    if name.lower() in _OWN_HEADERS:
        raise EmailError(
            f"headers: {name} is set from the node's params, not from headers",
            reason="invalid_params",
        )


def _attachment(spec: Mapping[str, Any], index: int) -> tuple[bytes, str, str]:
    """``(bytes, maintype, subtype)`` of one attachment spec."""
    where = f"attachments[{index}]"
    content = spec.get("content")
    encoding = spec.get("encoding") or "text"
    media_type = spec.get("content_type")
    if encoding == "base64":
        try:
            data = base64.b64decode(str(content), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise EmailError(
                f"{where}.content is not valid base64: {exc}", reason="invalid_params"
            ) from exc
    elif isinstance(content, str):
        data = content.encode()
    else:  # an expression gave data: attach it as JSON
        data = json.dumps(content, ensure_ascii=False).encode()
        media_type = media_type or "application/json"
    if not media_type:
        guessed, _ = mimetypes.guess_type(str(spec["filename"]), strict=False)
        media_type = guessed or ("text/plain" if encoding == "text" else "application/octet-stream")
    maintype, _, subtype = str(media_type).partition("/")
    if not maintype or not subtype or ";" in subtype:
        raise EmailError(
            f"{where}.content_type {media_type!r} is not a media type like text/csv",
            reason="invalid_params",
        )
    return data, maintype.lower(), subtype.lower()
