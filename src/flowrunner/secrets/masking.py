"""Masking resolved secret values (``***``) in logs, events, errors and stored outputs.

Every non-empty value is masked, however short: a one-character secret will also hide that
character wherever it appears, which makes output harder to read but never leaks a secret
(deciding that a short secret "does not matter" is not the masker's call). Longer values are
matched first, so a secret that contains another is hidden whole. Structured secrets (SMTP
credentials) contribute every string inside them. Non-string leaves (a port number) are not
masked: numbers are too common in output to blank out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

MASK = "***"

T = TypeVar("T")


class Masker:
    def __init__(self, values: Iterable[str]) -> None:
        unique = sorted({v for v in values if v}, key=len, reverse=True)
        # One alternation scans each string once, whatever the number of secrets.
        self._pattern = re.compile("|".join(map(re.escape, unique))) if unique else None

    @classmethod
    def for_secrets(cls, resolved: Mapping[str, Any]) -> Masker:
        """A masker for ``SecretVault.resolve_all``'s result (string or structured values)."""
        values: list[str] = []
        for value in resolved.values():
            if not isinstance(value, str):
                # A structured secret may be logged whole, as its JSON text.
                values.append(json.dumps(value))
            values.extend(_strings(value))
        return cls(values)

    def mask_text(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(MASK, text)

    def mask(self, obj: T) -> T:
        """A copy of ``obj`` (str, dict, list, tuple, scalars) with every secret masked."""
        if self._pattern is None:
            return obj
        return self._mask(obj)  # type: ignore[no-any-return]  # same shape as the input

    def _mask(self, obj: Any) -> Any:
        if isinstance(obj, str):
            return self.mask_text(obj)
        if isinstance(obj, Mapping):
            return {key: self._mask(value) for key, value in obj.items()}
        if isinstance(obj, list | tuple):
            return type(obj)(self._mask(item) for item in obj)
        return obj


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)
