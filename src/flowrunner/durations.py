"""Durations as written in flow files: ``500ms``, ``2s``, ``1m``, ``1h``, ``1m30s`` or seconds.

One syntax for the format's own fields (``retry.wait``, ``timeout``), read by the loader, and
for node params that take a duration (``delay``), and for settings (the webhook retry
schedule): a standard-library leaf, so neither nodes nor services import the format's loader.
"""

from __future__ import annotations

import math
import re

# The same pattern is in schema/flow.schema.json (a test keeps them equal). Units go largest
# first, each at most once: Go's time.ParseDuration accepts "1s1m", but in a flow file that
# is a typo far more often than an intention.
DURATION_PATTERN = (
    r"^\s*(\d+(\.\d+)?|(?=\d)(\d+(\.\d+)?h)?(\d+(\.\d+)?m)?(\d+(\.\d+)?s)?(\d+(\.\d+)?ms)?)\s*$"
)
_FULL = re.compile(DURATION_PATTERN)
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}

DURATION_HINT = "use a number of seconds or a duration like 500ms, 2s, 1m, 1h, 1m30s"


def parse_duration(value: object) -> float:
    """Seconds in ``value``; raises ValueError with a readable message when it is not one."""
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"invalid duration {value!r}: must be a finite number >= 0")
        return float(value)
    if not isinstance(value, str) or _FULL.match(value) is None:
        raise ValueError(f"invalid duration {value!r}")
    text = value.strip()
    if _PART.search(text) is None:
        return float(text)
    return sum(float(m.group(1)) * _UNIT[m.group(2)] for m in _PART.finditer(text))
