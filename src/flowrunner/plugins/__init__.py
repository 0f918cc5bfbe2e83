"""The node-type registry: built-ins, and plugins from Python entry points.

``builtin_registry()`` builds a fresh registry each call (no module-level singleton): the
composition root owns it and passes it to ``load_flow``/``compile_flow``.
"""

from __future__ import annotations

from flowrunner.plugins.entry_points import GROUP, load_entry_points
from flowrunner.plugins.registry import NodeType, NodeTypeRegistry


def builtin_registry() -> NodeTypeRegistry:
    """A new registry holding every built-in node type (entry points not loaded)."""
    # Imported here: a plugin's node type needs only the registry, not every built-in.
    from flowrunner.nodes.control import CONTROL_TYPES
    from flowrunner.nodes.database import DATABASE_TYPES
    from flowrunner.nodes.email import EMAIL_TYPES
    from flowrunner.nodes.fanout import FANOUT_TYPES
    from flowrunner.nodes.http import HTTP_TYPES
    from flowrunner.nodes.script import SCRIPT_TYPES
    from flowrunner.nodes.store import STORE_TYPES

    registry = NodeTypeRegistry()
    for node_type, aliases in (
        *CONTROL_TYPES,
        *SCRIPT_TYPES,
        *FANOUT_TYPES,
        *HTTP_TYPES,
        *EMAIL_TYPES,
        *STORE_TYPES,
        *DATABASE_TYPES,
    ):
        registry.register(node_type, aliases=aliases)
    return registry


__all__ = [
    "GROUP",
    "NodeType",
    "NodeTypeRegistry",
    "builtin_registry",
    "load_entry_points",
]
