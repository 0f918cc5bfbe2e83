"""The node-type registry: built-ins, and plugins from Python entry points and a folder.

``builtin_registry()`` builds a fresh registry each call (no module-level singleton); a
``PluginManager`` (built by the composition root) adds the plugins and swaps in a new registry
when they change. The contract a plugin keeps is in ``contract``; docs/plugins.md tells it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from flowrunner.plugins.contract import FunctionNodeType, Plugin
from flowrunner.plugins.entry_points import GROUP, load_entry_points
from flowrunner.plugins.registry import NodeType, NodeTypeRegistry, TypeSource

if TYPE_CHECKING:
    from flowrunner.config import Settings
    from flowrunner.plugins.manager import PluginManager


def builtin_registry() -> NodeTypeRegistry:
    """A new registry holding every built-in node type (entry points not loaded)."""
    # Imported here: a plugin's node type needs only the registry, not every built-in.
    from flowrunner.nodes.agent import AGENT_TYPES
    from flowrunner.nodes.control import CONTROL_TYPES
    from flowrunner.nodes.database import DATABASE_TYPES
    from flowrunner.nodes.email import EMAIL_TYPES
    from flowrunner.nodes.fanout import FANOUT_TYPES
    from flowrunner.nodes.http import HTTP_TYPES
    from flowrunner.nodes.llm import LLM_TYPES
    from flowrunner.nodes.mcp import MCP_TYPES
    from flowrunner.nodes.script import SCRIPT_TYPES
    from flowrunner.nodes.store import STORE_TYPES
    from flowrunner.nodes.triggering import TRIGGERING_TYPES
    from flowrunner.nodes.webhook import WEBHOOK_TYPES

    registry = NodeTypeRegistry()
    for node_type, aliases in (
        *CONTROL_TYPES,
        *SCRIPT_TYPES,
        *FANOUT_TYPES,
        *HTTP_TYPES,
        *EMAIL_TYPES,
        *STORE_TYPES,
        *DATABASE_TYPES,
        *LLM_TYPES,
        *MCP_TYPES,
        *AGENT_TYPES,
        *WEBHOOK_TYPES,
        *TRIGGERING_TYPES,
    ):
        registry.register(node_type, aliases=aliases, checked=False)
    return registry


def plugin_manager(settings: Settings) -> PluginManager:
    """A manager for ``settings`` (plugins folder, entry points, disabled plugins), loaded."""
    from flowrunner.plugins.manager import PluginManager

    manager = PluginManager(
        folder=Path(settings.plugins_dir) if settings.plugins_dir else None,
        entry_points=settings.plugins_entry_points,
        disabled=settings.disabled_plugins(),
    )
    manager.reload()
    return manager


__all__ = [
    "GROUP",
    "FunctionNodeType",
    "NodeType",
    "NodeTypeRegistry",
    "Plugin",
    "TypeSource",
    "builtin_registry",
    "load_entry_points",
    "plugin_manager",
]
