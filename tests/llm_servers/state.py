"""What a scripted server remembers, shared by its apps and read by the tests."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ServerState:
    api_key: str | None = None  # when set, any other key is refused (401)
    requests: list[dict[str, Any]] = field(default_factory=list)  # bodies, in order
    keys: list[str] = field(default_factory=list)  # the key each request carried
    script: dict[str, int] = field(default_factory=dict)  # the scripts' counters
    gate: threading.Event = field(default_factory=threading.Event)
    streaming: threading.Event = field(default_factory=threading.Event)  # first words sent
    disconnected: threading.Event = field(default_factory=threading.Event)  # gated client left

    async def wait_gate(self) -> None:
        # The test opens it from another thread: a threading.Event, polled.
        while not self.gate.is_set():  # noqa: ASYNC110 - set from the test's thread
            await asyncio.sleep(0.01)
