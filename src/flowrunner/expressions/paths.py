"""The native fast path: plain dotted paths and indexing, resolved without JavaScript.

Accepted shapes: ``input.a.b``, ``results.fetch.body[0].id``, ``shared["k"]``,
``input.items[-1]``, ``input?.a`` (optional chaining is the default anyway). Anything else
(operators, calls, literals) is left to the JavaScript evaluator.

Resolution follows JavaScript's optional chaining: a missing key, an index out of range or a
step into ``None`` yields ``None`` instead of raising. Two deliberate extensions: a negative
index counts from the end (``items[-1]`` is the last item), and ``.length`` of a list or string
is its length.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

Key = str | int

_IDENT = r"[A-Za-z_$][A-Za-z0-9_$]*"
_TOKEN = re.compile(
    rf"""\s*(?:
        (?:\?\.|\.)\s*(?P<attr>{_IDENT})          # .name or ?.name
      | (?:\?\.)?\[\s*(?:
            (?P<int>-?\d+)                        # [0], [-1]
          | "(?P<dq>(?:[^"\\]|\\.)*)"             # ["key"]
          | '(?P<sq>(?:[^'\\]|\\.)*)'             # ['key']
        )\s*\]
    )""",
    re.VERBOSE,
)
_ROOT = re.compile(rf"\s*(?P<root>{_IDENT})")
_ESCAPE = re.compile(r"\\(.)")


def parse_path(code: str, roots: frozenset[str]) -> tuple[str, tuple[Key, ...]] | None:
    """``(root, keys)`` when ``code`` is a plain path from one of ``roots``, else ``None``."""
    m = _ROOT.match(code)
    if m is None or m.group("root") not in roots:
        return None
    keys: list[Key] = []
    pos = m.end()
    end = len(code.rstrip())
    while pos < end:
        t = _TOKEN.match(code, pos)
        if t is None:
            return None
        attr, number, dq, sq = t.group("attr", "int", "dq", "sq")
        if attr is not None:
            keys.append(attr)
        elif number is not None:
            keys.append(int(number))
        else:
            keys.append(_ESCAPE.sub(r"\1", dq if dq is not None else sq))
        pos = t.end()
    return m.group("root"), tuple(keys)


def resolve_path(value: Any, keys: tuple[Key, ...]) -> Any:
    """Follow ``keys`` from ``value``; ``None`` as soon as a step does not exist."""
    for key in keys:
        if value is None:
            return None
        if type(value) is dict and type(key) is str:  # the common case, without ABC checks
            value = value.get(key)
        elif type(value) is list and type(key) is int:
            value = value[key] if -len(value) <= key < len(value) else None
        elif isinstance(value, Mapping):
            if key in value:
                value = value[key]
            elif isinstance(key, int):
                # JS coerces obj[0] to obj["0"]; YAML/JSON mappings have string keys.
                value = value.get(str(key))
            else:
                return None
        elif isinstance(value, Sequence):
            value = _index(value, key)
        else:
            return None
    return value


def _index(seq: Sequence[Any], key: Key) -> Any:
    if isinstance(key, str):
        if key == "length":
            return len(seq)
        if not key.lstrip("-").isdigit():
            return None
        key = int(key)
    if -len(seq) <= key < len(seq):
        return seq[key]
    return None
