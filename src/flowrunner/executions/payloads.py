"""What may leave a run: JSON-safe, secret-free, size-bounded copies of its values.

Everything a run records (event outputs and errors, the final output) passes through here.
Secrets are masked wherever their value appears inside a string (with the vault's
``Masker``); payloads above
the size limit are replaced by a marker carrying a preview, so one node returning megabytes
cannot bloat the event history or a WebSocket frame.
"""

from __future__ import annotations

from typing import Any

from flowrunner import jsontext
from flowrunner.errors import FlowrunnerError
from flowrunner.secrets import Masker

TRUNCATED = "$truncated"


def to_json(value: Any) -> Any:
    """A JSON round trip of ``value``: a detached copy, with non-JSON values as text and lone
    surrogates (not valid Unicode, e.g. from a JavaScript string) replaced by U+FFFD."""
    return jsontext.copy(value, default=str, well_formed=True)


def bounded(value: Any, masker: Masker, limit: int) -> Any:
    """``value`` JSON-safe and masked; past ``limit`` bytes, a marker with a masked preview."""
    # Mask the value tree before serialising, not the text: a secret with a quote or a
    # backslash appears escaped in JSON text and would slip through a textual replace.
    text = jsontext.dumps(masker.mask(value), default=str)
    if "\\ud" in text:  # a lone surrogate came through as an escape: make it U+FFFD
        text = jsontext.dumps(jsontext.replace_lone_surrogates(jsontext.loads(text)))
    if len(text) <= limit:
        return jsontext.loads(text)
    return {TRUNCATED: True, "size": len(text), "preview": text[: max(0, limit // 4)]}


def error_details(
    exc: BaseException, masker: Masker, *, node_id: str | None = None
) -> dict[str, Any]:
    """The stored form of a failure: code, message, node and exception type, secrets masked."""
    cause: BaseException = exc
    # NodeFailed wraps the node's own exception; report the one the author can act on.
    inner = getattr(exc, "cause", None)
    if isinstance(inner, BaseException):
        cause = inner
    node = node_id or getattr(exc, "node_id", None) or getattr(cause, "node_id", None)
    # The cause's code says what went wrong (flow_failed, node_timeout, script_error...).
    if isinstance(cause, FlowrunnerError):
        code = cause.code
    else:
        code = exc.code if isinstance(exc, FlowrunnerError) else "node_failed"
    details: dict[str, Any] = {
        "code": code,
        "message": masker.mask_text(str(exc) or type(exc).__name__),
        "type": type(cause).__name__,
    }
    if node:
        details["node_id"] = node
    return details
