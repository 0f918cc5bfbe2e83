"""The original flowrunner's ``shared["<kind>_result"]``: which extra key a node's output gets.

Flows written for the original read a node's output back as ``${shared.llm_result...}`` or
``${shared.http_result.body}``, keyed by what the node is rather than by its id. The rule is
the original's, decided from the node as written:

- an ``mcp`` node → ``mcp_result`` (before the ``url`` rule: an HTTP MCP server has a url)
- params with ``url`` → ``http_result``; params with ``model`` → ``llm_result``
- a node type of the ``email`` family (``email``, ``email.send``) → ``email_result``
- a node type of the ``store`` family (``store``, ``store.get``) → ``store_result``
- a ``postgres`` or ``dynamodb`` node → ``postgres_result`` / ``dynamodb_result``
- a ``wait``/``delay`` node with a ``type`` param → ``<type>_result``

The value stored is the output itself (a second reference, not a copy), beside
``shared["result"]``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["result_key"]

_WAIT_TYPES = frozenset({"wait", "delay"})
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def result_key(node_type: str, params: Mapping[str, Any]) -> str | None:
    """The original's ``<kind>_result`` key for a node, or None when it has none."""
    if node_type == "mcp":
        return "mcp_result"
    if "url" in params:
        return "http_result"
    if "model" in params:
        return "llm_result"
    family = node_type.split(".", 1)[0]
    if family in ("email", "store", "postgres", "dynamodb"):
        return f"{family}_result"
    kind = params.get("type")
    if node_type in _WAIT_TYPES and isinstance(kind, str) and _NAME.fullmatch(kind):
        return f"{kind}_result"
    return None
