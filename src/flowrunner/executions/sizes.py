"""How big a run's data is, measured before it is copied, and the limits it must stay under.

Everything a run keeps is stored as JSON (events, checkpoints, the final output), so sizes
are measured as the bytes of compact JSON text, the same measure as the event payload cap
(``payloads.bounded``). A value in memory can be far smaller than its JSON, because one
object may be referenced many times (a batch whose every item returns its input holds one
list a thousand times; as JSON it is a thousand copies), so encoding it just to measure it
would be the very copy the limit guards against. ``json_size`` first checks (in C, with
``gc.get_referents``) whether any container or long string appears twice. If none does, the
JSON is about the size of the value in memory and orjson encodes it to count (fast, and the
encoding doubles as the copy a checkpoint needs). If one does, it walks the value instead,
counting each repeated object from a memo (no re-walk) and stopping as soon as the count
passes the limit: neither the copy nor time in proportion to it.

``RunLimits`` holds a run's three caps and is what the runner hands the engine (as its size
check) and the recorder (for the checkpoint).
"""

from __future__ import annotations

import gc
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from flowrunner import jsontext
from flowrunner.errors import SizeLimitExceeded

__all__ = ["RunLimits", "json_size", "measured_copy"]


def _text_size(text: str) -> int:
    """Bytes of ``text`` as a JSON string; orjson escapes exactly as the stored text will."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return len(text) + 2  # nothing to escape: the common case, without an encode
    return len(orjson.dumps(text))


def json_size(value: Any, limit: int) -> int:
    """The length of ``value`` as compact JSON, or any number above ``limit`` once the count
    passes it. Exact for JSON data (and values stored as text)."""
    if _is_tree(value):
        # No object twice: the JSON is about as big as the value already is in memory, so
        # encoding it (in C) to count is safe and the fastest way.
        return len(_encode(value))
    return _walk(value, limit)


def measured_copy(value: Any, limit: int) -> tuple[int, Any]:
    """``(size, detached JSON copy)`` of ``value``; the copy is None when ``size > limit``
    (and then was never made)."""
    if _is_tree(value):
        raw = _encode(value)
        return (len(raw), None) if len(raw) > limit else (len(raw), jsontext.loads(raw))
    size = _walk(value, limit)
    return (size, None) if size > limit else (size, jsontext.copy(value, default=str))


_CONTAINERS = frozenset({dict, list, tuple})
# Strings shorter than this are not tracked as possibly repeated: repeating a short string
# cannot blow a value up by much more than the references to it cost in memory already.
_BIG_TEXT = 256


def _is_tree(value: Any) -> bool:
    """Whether no container (or long string) appears twice in ``value``.

    Breadth-first over containers with ``gc.get_referents``, which lists an object's
    elements in C: the Python part only looks at the containers and long strings found.
    """
    if type(value) not in _CONTAINERS:
        return True
    seen = {id(value)}
    level = [value]
    containers = _CONTAINERS
    while level:
        found = [
            child
            for child in gc.get_referents(*level)
            if type(child) in containers or (type(child) is str and len(child) > _BIG_TEXT)
        ]
        for child in found:
            key = id(child)
            if key in seen:
                return False
            seen.add(key)
        level = [child for child in found if type(child) is not str]
    return True


def _encode(value: Any) -> bytes:
    try:
        return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:  # what orjson declines (big integers): as jsontext does
        return jsontext.dumps(value, default=str).encode()


def _walk(value: Any, limit: int) -> int:
    """The size by walking ``value``: each object once, then from a memo per reference; the
    walk stops as soon as the count passes ``limit``."""
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

    def shared_copy(self, shared: Any, node_id: str) -> tuple[int, Any]:
        """``(size, detached JSON copy)`` of the shared state, or SizeLimitExceeded naming the
        node that just ran (the copy is not made then)."""
        size, copy = measured_copy(shared, self.shared)
        self._check_shared(size, node_id)
        return size, copy

    def check_shared(self, shared: Any, node_id: str) -> None:
        """SizeLimitExceeded naming the node that just ran if the shared state is over its
        cap: the check of ``shared_copy`` where no copy is wanted (a skipped checkpoint)."""
        self._check_shared(json_size(shared, self.shared), node_id)

    def _check_shared(self, size: int, node_id: str) -> None:
        if size > self.shared:
            raise SizeLimitExceeded(
                f"the shared state after node '{node_id}'",
                limit=self.shared,
                size=size,
                setting="FLOWRUNNER_MAX_SHARED_BYTES",
                node_id=node_id,
            )

    def checkpoint_parts(
        self,
        parts: Iterable[tuple[str, Any]],
        used: int,
        node_id: str,
        *,
        sizes: dict[str, int] | None = None,
    ) -> dict[str, Any]:
        """Detached JSON copies of ``parts`` (a checkpoint's results), one at a time, failing
        as soon as ``used`` plus what is copied passes the checkpoint cap: the copy never
        grows past the cap by more than one part, itself measured before it is copied.
        ``sizes``, if given, gets each part's JSON size."""
        out: dict[str, Any] = {}
        total = used
        for key, value in parts:
            total += len(key) + 4  # quotes, colon, comma
            size, copy = measured_copy(value, self.checkpoint - total)
            total += size
            if total > self.checkpoint:
                raise SizeLimitExceeded(
                    f"the checkpoint after node '{node_id}' (shared state and every output)",
                    limit=self.checkpoint,
                    size=total,
                    setting="FLOWRUNNER_MAX_CHECKPOINT_BYTES",
                    node_id=node_id,
                )
            out[key] = copy
            if sizes is not None:
                sizes[key] = size
        return out
