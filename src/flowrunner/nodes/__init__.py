"""Built-in node types, one module per family; ``base`` is what they (and plugins) build on."""

from flowrunner.nodes.base import RUN_SECRETS, Call, DefinedNode, DefinedNodeType, HookHost

__all__ = ["RUN_SECRETS", "Call", "DefinedNode", "DefinedNodeType", "HookHost"]
