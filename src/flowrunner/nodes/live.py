"""Live-only run events: what a node shows while it works, published but never stored.

A streaming ``llm`` node produces tokens far faster than a run's history should grow, so
they go to the live subscribers (WebSocket/SSE) only, throttled, and the stored history keeps
the node's final output. The runner gives the run a ``LIVE_SINK`` (the recorder publishes on
the event bus); with no sink (``flowrunner run``, a bare engine) the text is just dropped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from flowrunner.engine import RunScoped

LiveSink = Callable[[str, Mapping[str, Any]], None]
"""``(node_id, data)``: publish one live event for the node (never awaited; cheap)."""

LIVE_SINK: RunScoped[LiveSink | None] = RunScoped("live_sink", None)

STREAM_INTERVAL = 0.1  # seconds between two live events of one node
STREAM_MAX_CHARS = 4096  # a burst bigger than this goes out at once


class TextStream:
    """Collects generated text and publishes it at most every ``interval`` seconds."""

    __slots__ = ("_buffer", "_chunks", "_interval", "_last", "_node_id", "_sink", "_size")

    def __init__(
        self, node_id: str, sink: LiveSink | None, interval: float = STREAM_INTERVAL
    ) -> None:
        self._node_id = node_id
        self._sink = sink
        self._interval = interval
        self._buffer: list[str] = []
        self._size = 0
        self._chunks = 0
        self._last = 0.0

    def __call__(self, text: str) -> None:
        if self._sink is None or not text:
            return
        self._buffer.append(text)
        self._size += len(text)
        now = time.monotonic()
        if now - self._last >= self._interval or self._size >= STREAM_MAX_CHARS:
            self._last = now
            self.flush()

    def flush(self) -> None:
        if self._sink is None or not self._buffer:
            return
        text = "".join(self._buffer)
        self._buffer.clear()
        self._size = 0
        self._chunks += 1
        self._sink(self._node_id, {"node_id": self._node_id, "delta": text, "chunk": self._chunks})
