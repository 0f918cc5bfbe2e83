"""What may leave a run: JSON-safe, secret-free, size-bounded copies of its values.

Everything a run records (event outputs and errors, the final output) passes through here.
Secrets are masked wherever their value appears inside a string (with the vault's
``Masker``); payloads above the size limit, or nested deeper than ``MAX_DEPTH``, are replaced
by a marker carrying a preview, so one node returning megabytes cannot bloat the event
history or a WebSocket frame, and none can make its run unreadable. Text is made storable by
``jsontext`` (a NUL or a lone surrogate becomes U+FFFD).
"""

from __future__ import annotations

from typing import Any

from flowrunner import jsontext
from flowrunner.errors import FlowrunnerError
from flowrunner.secrets import Masker

TRUNCATED = "$truncated"
# Bytes of an error's ``details`` kept with the run (past it: a marker with a preview).
MAX_ERROR_DETAILS = 256 * 1024
# Deeper values are stored but could not be served: the API's response models refuse to
# serialize past about 254 levels, and one such output made its account's run list fail.
MAX_DEPTH = 200


def to_json(value: Any) -> Any:
    """A JSON round trip of ``value``: a detached copy, with non-JSON values as text and lone
    surrogates (not valid Unicode, e.g. from a JavaScript string) replaced by U+FFFD."""
    return jsontext.copy(value, default=str, well_formed=True)


def bounded(value: Any, masker: Masker, limit: int) -> Any:
    """``value`` JSON-safe and masked; past ``limit`` bytes or ``MAX_DEPTH`` levels, a marker
    with a masked preview."""
    # Mask the value tree before serialising, not the text: a secret with a quote or a
    # backslash appears escaped in JSON text and would slip through a textual replace.
    try:
        text = jsontext.dumps(masker.mask(value), default=str)
    except RecursionError:
        # Masking and encoding recurse: a value hundreds of levels deep is too deep for them,
        # and shows nothing (no preview: unmasked text must not leave the run).
        return {TRUNCATED: True, "reason": f"nested deeper than {MAX_DEPTH} levels"}
    if "\\ud" in text:  # a lone surrogate came through as an escape: make it U+FFFD
        text = jsontext.dumps(jsontext.replace_lone_surrogates(jsontext.loads(text)))
    preview = text[: max(0, limit // 4)]
    if len(text) > limit:
        return {TRUNCATED: True, "size": len(text), "preview": preview}
    # Counting brackets first spares most payloads the encoding (this runs for every event).
    deep = text.count("[") + text.count("{") > MAX_DEPTH
    if deep and jsontext.deeper_than(text.encode(), MAX_DEPTH):
        reason = f"nested deeper than {MAX_DEPTH} levels"
        return {TRUNCATED: True, "size": len(text), "reason": reason, "preview": preview}
    return jsontext.loads(text)


def error_details(
    exc: BaseException, masker: Masker, *, node_id: str | None = None
) -> dict[str, Any]:
    """The stored form of a failure: code, message, node and exception type, and the
    ``details`` its error class makes public (``public_context``), secrets masked."""
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
    if isinstance(cause, FlowrunnerError) and cause.public_context:
        public = {k: cause.context[k] for k in cause.public_context if k in cause.context}
        if public:
            details["details"] = bounded(public, masker, MAX_ERROR_DETAILS)
    return details
