"""The cyclic garbage collector paused while a process builds what it keeps for its life.

A server's start imports ~1,200 modules and builds its app and services: objects that live
as long as the process. The collector's passes over that growing heap meanwhile free next to
nothing and cost a tenth to a fifth of a start's CPU. ``serve`` pauses it while it imports and
builds the app, the app's lifespan while its services start; both turn it on again before the
first request.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """The collector off inside the block, and on again after it (also on an error) if it
    was on before: a process that runs with it off keeps it off."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()
