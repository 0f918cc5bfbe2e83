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
        while not self.gate.is_set():
            await asyncio.sleep(0.01)
