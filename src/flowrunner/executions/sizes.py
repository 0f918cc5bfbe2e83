"""How big a run's data is, measured before it is copied, and the limits it must stay under.

Everything a run keeps is stored as JSON (events, checkpoints, the final output), so sizes
are measured as the bytes of compact JSON text, the same measure as the event payload cap
(``payloads.bounded``). But the measure does not build that text: a value in memory can be
far smaller than its JSON, because one object may be referenced many times (a batch whose
every item returns its input holds one list a thousand times; as JSON it is a thousand
copies). So ``json_size`` walks the value, counts each object once per reference from a memo
(no re-walk), and stops as soon as the count passes the limit: measuring costs neither the
copy it guards against nor time proportional to it.

``RunLimits`` holds a run's three caps and is what the runner hands the engine (as its size
check) and the recorder (for the checkpoint).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from flowrunner import jsontext
from flowrunner.errors import SizeLimitExceeded

__all__ = ["RunLimits", "json_size"]


def _text_size(text: str) -> int:
    """Bytes of ``text`` as a JSON string; orjson escapes exactly as the stored text will."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return len(text) + 2  # nothing to escape: the common case, without an encode
    return len(orjson.dumps(text))


def json_size(value: Any, limit: int) -> int:
    """The length of ``value`` as compact JSON, or any number above ``limit`` once the count
    passes it (the walk stops there). Exact for JSON data up to float formatting."""
    memo: dict[int, int] = {}

    def size(v: Any, budget: int) -> int:
        kind = type(v)
        if kind is str:
            return _text_size(v)
        if kind is int:
            return len(str(v))
        if v is None or v is True:
            return 4
        if v is False:
            return 5
        if kind is float:
            return len(orjson.dumps(v))
        if kind is dict or kind is list or kind is tuple:
            key = id(v)
            known = memo.get(key)
            if known is not None:
                return known
            total = 1 + max(0, len(v) - 1) + 1  # brackets and commas
            if total > budget:
                return total
            if kind is dict:
                for k, item in v.items():
                    total += _text_size(k if type(k) is str else str(k)) + 1  # and the colon
                    if total > budget:
                        return total
                    total += size(item, budget - total)
                    if total > budget:
                        return total
            else:
                for item in v:
                    total += size(item, budget - total)
                    if total > budget:
                        return total
            memo[key] = total
            return total
        # Anything else (datetimes, dataclasses, objects stored as text): as jsontext encodes it.
        return len(jsontext.dumps(v, default=str).encode())

    return size(value, limit)


@dataclass(frozen=True, slots=True)
class RunLimits:
    """A run's size caps in bytes of JSON: one node's output, the shared state, a checkpoint."""

    node_output: int
    shared: int
    checkpoint: int

    def check_output(self, node_id: str, value: Any, so_far: int) -> int:
        """The engine's size check: ``so_far`` plus ``value``'s size, or SizeLimitExceeded.

        A batch node calls it with each item's output as the item completes, so a fan-out
        fails at the first item that takes the total past the cap, not after building it all.
        """
        budget = self.node_output - so_far
        total = so_far + json_size(value, budget)
        if total > self.node_output:
            raise SizeLimitExceeded(
                f"the output of node '{node_id}'",
                limit=self.node_output,
                size=total,
                setting="FLOWRUNNER_MAX_NODE_OUTPUT_BYTES",
                node_id=node_id,
            )
        return total

    def check_shared(self, shared: Any, node_id: str) -> int:
        """The size of the shared state, or SizeLimitExceeded naming the node that grew it."""
        size = json_size(shared, self.shared)
        if size > self.shared:
            raise SizeLimitExceeded(
                f"the shared state after node '{node_id}'",
                limit=self.shared,
                size=size,
                setting="FLOWRUNNER_MAX_SHARED_BYTES",
                node_id=node_id,
            )
        return size

    def checkpoint_parts(
        self, parts: Iterable[tuple[str, Any]], used: int, node_id: str
    ) -> dict[str, Any]:
        """Detached JSON copies of ``parts`` (a checkpoint's results), one at a time, failing
        as soon as ``used`` plus what is copied passes the checkpoint cap: the copy never
        grows past the cap by more than one part, itself measured before it is copied."""
        out: dict[str, Any] = {}
        total = used
        for key, value in parts:
            total += json_size(value, self.checkpoint - total) + len(key) + 4
            if total > self.checkpoint:
                raise SizeLimitExceeded(
                    f"the checkpoint after node '{node_id}' (shared state and every output)",
                    limit=self.checkpoint,
                    size=total,
                    setting="FLOWRUNNER_MAX_CHECKPOINT_BYTES",
                    node_id=node_id,
                )
            out[key] = jsontext.copy(value, default=str)
        return out
