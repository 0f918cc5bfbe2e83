"""``Pause``: a node asks for the run to stop where it is, to be resumed at that node later.

A durable wait (``wait_for``, a long ``delay``) does not hold a task for hours: it raises
``Pause`` and the layer around the engine (the runner) records the run as waiting; when it is
woken, the run resumes from its last checkpoint, which names the pausing node as the next one,
and that node runs again, finding its wait over. Only a node whose visit can be resumed that
way may pause (``Context.resumable``).

``Pause`` derives from ``BaseException``, like ``asyncio.CancelledError``: it is not a failure,
so retries, fallbacks and ``error`` edges, which handle ``Exception``, must let it through.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class Pause(BaseException):
    """Stop the run before this node finishes; ``data`` says why (the caller's business)."""

    def __init__(self, node_id: str, data: Mapping[str, Any]) -> None:
        super().__init__(node_id)
        self.node_id = node_id
        self.data = data
