"""Per-flow size limits: how big a flow's text, how many nodes, how long one script.

A flow is parsed and checked when it is saved, and every check costs time proportional to
its size; these limits keep that time (and the memory of the parsed document) bounded.
The text's size is checked before anything is parsed (``FlowTooLarge``, HTTP 413); the node
count right after parsing, before the (costlier) checks run; script sizes as each node is
checked. The last two are ordinary problems with a path and a line:column.

``None`` for a limit means unlimited: flows already stored (and local files run by the CLI)
are loaded without limits, so lowering a limit never breaks a flow that was accepted.
"""

from __future__ import annotations

from dataclasses import dataclass

from flowrunner.errors import FlowTooLarge

__all__ = ["FlowLimits", "script_too_long"]


@dataclass(frozen=True, slots=True)
class FlowLimits:
    """Limits of one flow document: bytes of its text, nodes, bytes of one script."""

    max_bytes: int | None = None
    max_nodes: int | None = None
    max_script_bytes: int | None = None

    def check_text(self, text: str, source: str | None = None) -> None:
        """FlowTooLarge when ``text`` is over ``max_bytes`` (as UTF-8)."""
        if self.max_bytes is None or len(text) * 4 <= self.max_bytes:
            return  # even all 4-byte characters would fit: no need to encode
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > self.max_bytes:
            raise FlowTooLarge(size, self.max_bytes, source)

    def nodes_message(self, count: int) -> str | None:
        """Why ``count`` nodes are too many, or None."""
        if self.max_nodes is None or count <= self.max_nodes:
            return None
        return f"the flow has {count} nodes, over the limit of {self.max_nodes}"


def script_too_long(code: str, limit: int | None) -> str | None:
    """Why ``code`` is too long to be one script (over ``limit`` bytes as UTF-8), or None."""
    if limit is None or len(code) * 4 <= limit:
        return None
    size = len(code.encode("utf-8", "surrogatepass"))
    if size <= limit:
        return None
    return f"the script is {size} bytes, over the limit of {limit} bytes"


UNLIMITED = FlowLimits()
