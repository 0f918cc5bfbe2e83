"""Built-in node types, one module per family; ``base`` is what they (and plugins) build on,
``spec`` what a node is built from."""

from flowrunner.nodes.base import SECRETS, Call, DefinedNode, DefinedNodeType
from flowrunner.nodes.spec import BuildEnv, NodeSpec

__all__ = ["SECRETS", "BuildEnv", "Call", "DefinedNode", "DefinedNodeType", "NodeSpec"]
