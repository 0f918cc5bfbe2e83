"""``email.receive``: read messages from an IMAP folder (aioimaplib).

Search the folder with the filters (``unseen``, ``from``, ``to``, ``subject``, ``since``,
``before``), keep the ``limit`` newest matches, fetch them without changing their flags, and
set ``\\Seen`` on the ones returned when ``mark_as_read`` is true — after every one was read,
so a run that fails halfway marks nothing.

Output: a list of messages, oldest first: ``id`` (the IMAP UID, as text), ``message_id``,
``from``, ``to``, ``cc``, ``reply_to``, ``subject``, ``date`` (ISO 8601), ``text``, ``html``,
``attachments`` (``filename``, ``content_type``, ``size``, and with ``include_attachments``
the ``content`` in base64), ``flags``, ``size``.

Bounds: ``limit`` (default 20, at most 200) messages; a message over ``MAX_MESSAGE_BYTES`` is
returned with its headers only (``truncated: true``); an attachment over
``max_attachment_bytes`` without its content; and the output stops before the message that
would take it over ``MAX_OUTPUT_BYTES`` (a warning in the run's log says how many were left;
those are not marked as read).
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from flowrunner.nodes.base import Call, DefinedNode, DefinedNodeType
from flowrunner.nodes.email.checks import check_params, params_validator
from flowrunner.nodes.email.connection import (
    EmailError,
    TlsMode,
    connection_schema,
    server_address,
    timeout_seconds,
    tls_context,
)
from flowrunner.nodes.email.parse import parse_message
from flowrunner.nodes.email.slots import connection_slot

if TYPE_CHECKING:
    from flowrunner.nodes.email.imap import ImapSession

__all__ = ["EMAIL_RECEIVE"]

_PORTS: dict[TlsMode, int] = {"implicit": 993, "starttls": 143, "none": 143}
DEFAULT_LIMIT = 20
MAX_LIMIT = 200
DEFAULT_ATTACHMENT_BYTES = 1 << 20
MAX_ATTACHMENT_BYTES = 10 << 20
MAX_MESSAGE_BYTES = 25 << 20
MAX_OUTPUT_BYTES = 6 << 20  # under the run's default node output cap (8 MB)
_PARSE_INLINE_BYTES = 256 << 10
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

_DATE = {"type": "string", "minLength": 10, "maxLength": 40}
_FILTER = {"type": "string", "minLength": 1, "maxLength": 1000}

RECEIVE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        **connection_schema("imap", "implicit"),
        "folder": {"type": "string", "minLength": 1, "maxLength": 1000, "default": "INBOX"},
        "unseen": {"type": "boolean", "default": False},
        "from": _FILTER,
        "to": _FILTER,
        "subject": _FILTER,
        "since": _DATE,
        "before": _DATE,
        "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
        "mark_as_read": {"type": "boolean", "default": False},
        "include_attachments": {"type": "boolean", "default": False},
        "max_attachment_bytes": {
            "type": "integer",
            "minimum": 0,
            "maximum": MAX_ATTACHMENT_BYTES,
            "default": DEFAULT_ATTACHMENT_BYTES,
        },
    },
    "required": ["imap_host", "username", "password"],
    "additionalProperties": False,
}
_VALIDATOR = params_validator(RECEIVE_SCHEMA)
_NUMBERS = frozenset({"imap_port", "limit", "max_attachment_bytes"})


class EmailReceiveNode(DefinedNode):
    __slots__ = ()

    actions = frozenset()

    async def work(self, call: Call) -> Any:
        params = check_params("email.receive", _VALIDATOR, call.params, _NUMBERS)
        criteria, charset = search_criteria(params)
        host, port, tls = server_address(params, "imap", "implicit", _PORTS)
        context = tls_context(params) if tls != "none" else None
        mark = bool(params.get("mark_as_read"))
        # Imported by the first receive: aioimaplib loads with the node type otherwise.
        from flowrunner.nodes.email.imap import ImapSession

        session = ImapSession(host, port, tls, context, timeout_seconds(params))
        async with connection_slot(), session as imap:
            await imap.open()
            await imap.login(str(params["username"]), str(params["password"]))
            await imap.select(str(params.get("folder") or "INBOX"), readonly=not mark)
            uids = await imap.search(criteria, charset)
            wanted = uids[-int(params.get("limit") or DEFAULT_LIMIT) :]
            messages = await self._read(call, imap, wanted, params) if wanted else []
            if mark and messages:
                await imap.mark_seen(int(m["id"]) for m in messages)
                for message in messages:
                    if "\\Seen" not in message["flags"]:
                        message["flags"].append("\\Seen")
            await imap.logout()
        return messages

    async def _read(
        self, call: Call, imap: ImapSession, uids: list[int], params: dict[str, Any]
    ) -> list[dict[str, Any]]:
        include = bool(params.get("include_attachments"))
        max_attachment = params.get("max_attachment_bytes")
        if max_attachment is None:
            max_attachment = DEFAULT_ATTACHMENT_BYTES
        sizes = await imap.sizes(uids)
        messages: list[dict[str, Any]] = []
        total = 0
        for uid in uids:
            size = sizes.get(uid)
            if size is None:
                continue  # expunged since the search
            too_big = size > MAX_MESSAGE_BYTES
            raw, flags = await imap.fetch(uid, headers_only=too_big)
            parse = partial(
                parse_message, raw, include_attachments=include, max_attachment_bytes=max_attachment
            )
            # Decoding megabytes of MIME is CPU work: off the event loop, which serves other runs.
            parsed = parse() if len(raw) < _PARSE_INLINE_BYTES else await asyncio.to_thread(parse)
            message = {"id": str(uid), **parsed, "flags": flags, "size": size}
            if too_big:
                message["truncated"] = True
            total += _output_size(message)
            if total > MAX_OUTPUT_BYTES:
                if not messages:
                    raise EmailError(
                        f"message {uid} alone is over {MAX_OUTPUT_BYTES} bytes of output: "
                        "lower max_attachment_bytes or leave include_attachments off",
                        reason="too_large",
                    )
                call.ctx.log(
                    f"email.receive: {len(uids) - len(messages)} more matching messages not "
                    f"returned: the output would be over {MAX_OUTPUT_BYTES} bytes "
                    "(lower limit or max_attachment_bytes)",
                    level="warning",
                )
                break
            messages.append(message)
        return messages


def search_criteria(params: dict[str, Any]) -> tuple[list[str], str | None]:
    """IMAP SEARCH keys for the filters, and the charset they need (None: plain ASCII)."""
    from flowrunner.nodes.email.imap import imap_quote

    criteria: list[str] = []
    if params.get("unseen"):
        criteria.append("UNSEEN")
    for key in ("from", "to", "subject"):
        value = params.get(key)
        if value:
            criteria += [key.upper(), imap_quote(_one_line(str(value), key))]
    for key in ("since", "before"):
        value = params.get(key)
        if value:
            criteria += [key.upper(), _imap_date(str(value), key)]
    if not criteria:
        criteria.append("ALL")
    charset = None if all(c.isascii() for c in criteria) else "UTF-8"
    return criteria, charset


def _one_line(text: str, param: str) -> str:
    if "\r" in text or "\n" in text or "\0" in text:
        raise EmailError(f"{param} must be one line", reason="invalid_params")
    return text


def _imap_date(text: str, param: str) -> str:
    """``2024-05-01`` (or an ISO 8601 date-time: its date) → IMAP's ``1-May-2024``."""
    try:
        day = date.fromisoformat(text[:10]) if len(text) == 10 else datetime.fromisoformat(text)
    except ValueError as exc:
        raise EmailError(
            f"{param}: {text!r} is not an ISO 8601 date like 2024-05-01", reason="invalid_params"
        ) from exc
    return f"{day.day}-{_MONTHS[day.month - 1]}-{day.year}"


def _output_size(message: dict[str, Any]) -> int:
    size = len(message.get("text") or "") + len(message.get("html") or "")
    for attachment in message["attachments"]:
        size += len(attachment.get("content") or "") + 200
    return size + 1000  # headers and keys, roughly


EMAIL_RECEIVE = DefinedNodeType(
    "email.receive",
    "Read messages from an IMAP folder (implicit TLS, STARTTLS or none) with filters "
    "(unseen, from, to, subject, since, before, limit); optionally mark them as read and "
    "include attachments (base64). Output: a list of messages.",
    EmailReceiveNode,
    RECEIVE_SCHEMA,
)
