"""What may leave a run: JSON-safe, secret-free, size-bounded copies of its values.

Everything a run records (event outputs and errors, checkpoints, the final output) passes
through here. Secrets are masked wherever their value appears inside a string; payloads above
the size limit are replaced by a marker carrying a preview, so one node returning megabytes
cannot bloat the event history or a WebSocket frame.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from flowrunner.errors import FlowrunnerError

MASK = "***"
TRUNCATED = "$truncated"
# Values shorter than this are not masked: masking "1" or "a" would garble every payload and
# protects nothing (a one-character secret is not a secret).
MIN_SECRET_LENGTH = 4


class Masker:
    """Replaces every occurrence of the given secret values inside strings with ``***``."""

    __slots__ = ("_pattern",)

    def __init__(self, secrets: Iterable[Any] = ()) -> None:
        values = sorted(
            {str(v) for v in secrets if v is not None and len(str(v)) >= MIN_SECRET_LENGTH},
            key=len,
            reverse=True,  # longest first, so a secret containing another is masked whole
        )
        self._pattern = re.compile("|".join(map(re.escape, values))) if values else None

    @property
    def active(self) -> bool:
        return self._pattern is not None

    def text(self, value: str) -> str:
        pattern = self._pattern
        return value if pattern is None else pattern.sub(MASK, value)

    def value(self, value: Any) -> Any:
        """A copy of a JSON-like ``value`` with secrets masked in every string, keys included."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {self.text(str(k)): self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value


def to_json(value: Any) -> Any:
    """A JSON round trip of ``value``: a detached copy, with non-JSON values as text."""
    return json.loads(json.dumps(value, default=str))


def bounded(value: Any, masker: Masker, limit: int) -> Any:
    """``value`` JSON-safe and masked; past ``limit`` bytes, a marker with a masked preview."""
    text = json.dumps(value, default=str, ensure_ascii=False)
    if masker.active:
        # Mask the value tree, not the text: a secret with a quote or backslash appears
        # escaped in the JSON text and would slip through a textual replace.
        masked = masker.value(json.loads(text))
        text = json.dumps(masked, ensure_ascii=False)
    if len(text) <= limit:
        return json.loads(text)
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
    code = exc.code if isinstance(exc, FlowrunnerError) else "node_failed"
    details: dict[str, Any] = {
        "code": code,
        "message": masker.text(str(exc) or type(exc).__name__),
        "type": type(cause).__name__,
    }
    if node:
        details["node_id"] = node
    return details
