"""Writing secrets as a dotenv file that ``run --secrets-file`` and ``secrets import`` read.

Values are double-quoted with the escapes the reader understands (newline, tab, quote and
backslash); an object value, or one with another kind of line break, cannot be a dotenv line,
so it is refused by name (use JSON).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowrunner.cli.client.errors import UsageProblem

_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t"}


def to_dotenv(values: Mapping[str, Any]) -> str:
    objects = sorted(k for k, v in values.items() if not isinstance(v, str))
    if objects:
        raise UsageProblem(
            f"{', '.join(objects)} hold JSON objects, which dotenv cannot: use --format json"
        )
    # Line breaks other than \n (\r, \u2028…) have no escape a dotenv reader knows.
    breaks = sorted(
        k for k, v in values.items() if len(f"<{v.replace(chr(10), '')}>".splitlines()) > 1
    )
    if breaks:
        raise UsageProblem(
            f"{', '.join(breaks)} hold line breaks dotenv cannot write: use --format json"
        )
    lines = [f'{key}="{_quoted(value)}"' for key, value in sorted(values.items())]
    return "".join(line + "\n" for line in lines)


def _quoted(text: str) -> str:
    return "".join(_ESCAPES.get(ch, ch) for ch in text)
