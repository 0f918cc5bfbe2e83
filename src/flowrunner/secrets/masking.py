"""Masking resolved secret values (``***``) in logs, events, errors and stored outputs.

A secret leaks in more shapes than its plain text: escaped inside JSON text (a ``"`` or ``\\``
in the value), URL-encoded in a query string, base64 in a Basic header, hex in a dump. The
masker recognises each value in all of those forms (``encoded_forms``), inside any string and
in mapping keys too (``{[secrets.S]: 1}`` makes the secret a key).

Values shorter than ``MIN_SUBSTRING_LENGTH`` are the exception: hiding ``ok`` wherever those
two letters appear would turn ordinary words into ``***`` and make every error unreadable, so
such a value is masked only where a whole field (a string, a key, an action) equals it. The
vault warns when one is saved. Longer values are matched first, so a secret that contains
another is hidden whole. Structured secrets (SMTP credentials) contribute every string inside
them and their JSON text. Non-string leaves (a port number) are not masked: numbers are too
common in output to blank out.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TypeVar
from urllib.parse import quote, quote_plus

from flowrunner import jsontext

MASK = "***"
MIN_SUBSTRING_LENGTH = 4
"""Shorter values are masked only as whole fields, never inside text."""

T = TypeVar("T")


class Masker:
    def __init__(self, values: Iterable[str]) -> None:
        forms: set[str] = set()
        exact: set[str] = set()
        for value in values:
            if not value:
                continue
            if len(value) < MIN_SUBSTRING_LENGTH:
                exact.add(value)
            else:
                forms.update(encoded_forms(value))
        self._exact = frozenset(exact)
        self._pattern = _compile(frozenset(forms)) if forms else None
        self._active = bool(forms or exact)

    @classmethod
    def for_secrets(cls, resolved: Mapping[str, Any]) -> Masker:
        """A masker for ``SecretVault.resolve_all``'s result (string or structured values)."""
        values: list[str] = []
        for value in resolved.values():
            if not isinstance(value, str):
                # A structured secret may be logged whole, as its JSON text (either spacing).
                values.append(json.dumps(value))
                values.append(json.dumps(value, separators=(",", ":")))
            values.extend(_strings(value))
        return cls(values)

    def mask_text(self, text: str) -> str:
        if text in self._exact:
            return MASK
        if self._pattern is None:
            return text
        return self._pattern.sub(MASK, text)

    def mask(self, obj: T) -> T:
        """``obj`` (str, dict, list, tuple, scalars) with every secret masked, in values and
        in mapping keys: a copy when something was masked, else ``obj`` itself."""
        if not self._active:
            return obj
        if not isinstance(obj, str) and not self.contains(obj):
            # Most outputs hold no secret: one search over their JSON text beats rebuilding
            # the tree string by string.
            return obj
        return self._mask(obj)  # type: ignore[no-any-return]  # same shape as the input

    def contains(self, obj: Any) -> bool:
        """Whether ``obj`` (JSON-like) holds a secret in a value or a key."""
        if not self._active:
            return False
        if self._pattern is not None:
            # One search over the JSON text is several times cheaper than walking the tree
            # string by string; escaped characters are found through the JSON-escaped forms.
            try:
                text = jsontext.dumps(obj, default=str)
            except (TypeError, ValueError):
                text = "\n".join(_texts(obj))
            if self._pattern.search(text) is not None:
                return True
        return bool(self._exact) and _holds_exact(obj, self._exact)

    def _mask(self, obj: Any) -> Any:
        if isinstance(obj, str):
            return self.mask_text(obj)
        if isinstance(obj, Mapping):
            return {
                self.mask_text(key) if isinstance(key, str) else key: self._mask(value)
                for key, value in obj.items()
            }
        if isinstance(obj, list | tuple):
            return type(obj)(self._mask(item) for item in obj)
        return obj


@functools.lru_cache(maxsize=64)
def _compile(forms: frozenset[str]) -> re.Pattern[str]:
    """One pattern for every form, scanning each string once whatever their number.

    Remembered per set of forms: every run of an account builds the same masker, and its
    forms (a dozen per secret) are costly to compute and compile again. The pattern is a
    trie of the forms, so at each position of the text only the forms sharing the next
    character are tried (a flat alternation tries them all; with hundreds of base64 and hex
    forms that was 5x slower). Greedy groups keep the longest form matching there.
    """
    try:
        return re.compile(_trie_regex(sorted(forms)))
    except (RecursionError, re.error):  # absurdly nested prefixes: the flat alternation
        return re.compile("|".join(map(re.escape, sorted(forms, key=len, reverse=True))))


def _trie_regex(words: list[str]) -> str:
    """A regex matching exactly ``words`` (sorted, non-empty), longest first at a position."""
    # Split by first character; a word that is a prefix of others ends here optionally.
    if len(words) == 1:
        return re.escape(words[0])
    prefix = _common_prefix(words[0], words[-1])  # sorted: the extremes bound the rest
    if prefix:
        rest = [w[len(prefix) :] for w in words]
        ends_here = "" in rest
        tail = _trie_regex([w for w in rest if w])
        return re.escape(prefix) + (f"(?:{tail})?" if ends_here else f"(?:{tail})")
    groups: dict[str, list[str]] = {}
    for word in words:
        groups.setdefault(word[0], []).append(word)
    return "|".join(_trie_regex(group) for group in groups.values())


def _common_prefix(first: str, last: str) -> str:
    size = 0
    for a, b in zip(first, last, strict=False):
        if a != b:
            break
        size += 1
    return first[:size]


def short_value_warning(value: Any) -> str | None:
    """Why ``value`` (a secret about to be saved) will be masked less, or None."""
    if any(0 < len(text) < MIN_SUBSTRING_LENGTH for text in _strings(value)):
        return (
            f"the value (or a string inside it) is shorter than {MIN_SUBSTRING_LENGTH} "
            "characters: it is masked only where a whole field equals it, never inside "
            "longer text (log lines, error messages), so it can show up there"
        )
    return None


@functools.lru_cache(maxsize=1024)  # the same secrets are resolved for every run
def encoded_forms(value: str) -> frozenset[str]:
    """``value`` and the shapes it takes in text: JSON/JS and Python string escapes, URL
    encodings, base64 (standard and URL-safe, at any alignment inside a longer encoding) and
    hex. Forms shorter than ``MIN_SUBSTRING_LENGTH`` are left out."""
    forms = {value}
    escaped = json.dumps(value)[1:-1]
    forms.update((escaped, json.dumps(value, ensure_ascii=False)[1:-1]))
    forms.add(json.dumps(escaped)[1:-1])  # JSON text inside a JSON string (a logged body)
    forms.add(repr(value)[1:-1])
    for url in (quote(value, safe=""), quote(value), quote_plus(value)):
        forms.add(url)
        # Percent-escapes are case-insensitive; some encoders write them in lower case.
        forms.add(re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), url))
    raw = value.encode()
    for core in _base64_cores(raw):
        forms.add(core)
        forms.add(core.translate(_URLSAFE))
    hexed = binascii.hexlify(raw).decode()
    forms.update((hexed, hexed.upper()))
    return frozenset(form for form in forms if len(form) >= MIN_SUBSTRING_LENGTH)


_URLSAFE = str.maketrans("+/", "-_")


def _base64_cores(raw: bytes) -> Iterator[str]:
    """The part of base64 text that depends on ``raw`` alone, for each of the three offsets
    ``raw`` can start at inside a longer encoded string (so it is found when embedded)."""
    n = len(raw)
    for offset in range(3):
        text = base64.b64encode(b"\0" * offset + raw).decode()
        # Character j holds bits 6j..6j+5: keep the ones made only of raw's bits.
        start = -(-8 * offset // 6)
        end = 8 * (offset + n) // 6
        yield text[start:end]
    yield base64.b64encode(raw).decode()  # standalone, with its padding


def _holds_exact(obj: Any, exact: frozenset[str]) -> bool:
    # Plain loops: this walks every checkpoint of runs whose account has a short secret.
    if isinstance(obj, str):
        return obj in exact
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key in exact or (not isinstance(value, int | float) and _holds_exact(value, exact)):
                return True
        return False
    if isinstance(obj, list | tuple):
        for item in obj:  # noqa: SIM110  # a loop: any() over a generator is ~2x slower here
            if not isinstance(item, int | float) and _holds_exact(item, exact):
                return True
        return False
    if isinstance(obj, Mapping):
        return _holds_exact(dict(obj), exact)
    return False


def _texts(obj: Any) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, Mapping):
        for key, value in obj.items():
            if isinstance(key, str):
                yield key
            yield from _texts(value)
    elif isinstance(obj, list | tuple):
        for item in obj:
            yield from _texts(item)


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)
