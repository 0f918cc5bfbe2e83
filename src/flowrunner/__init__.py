"""Flowrunner: YAML-driven workflow orchestration.

The names in ``__all__`` are the public surface for plugin authors and embedders; everything
else may change between releases. They are imported lazily: ``import flowrunner.errors`` (which
every sandbox worker process does) must not pull in the whole definition and storage stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from flowrunner.errors import (
    DefinitionError,
    ExecutionError,
    FlowrunnerError,
    NodeFailed,
    Problem,
)

if TYPE_CHECKING:
    from flowrunner.definition import CompiledFlow, FlowDefinition, compile_flow, load_flow
    from flowrunner.engine import (
        BatchPolicy,
        Context,
        Flow,
        Node,
        NodeEvent,
        RetryPolicy,
        RunScoped,
    )
    from flowrunner.nodes import Call, DefinedNode, DefinedNodeType
    from flowrunner.plugins import (
        FunctionNodeType,
        NodeType,
        NodeTypeRegistry,
        Plugin,
        builtin_registry,
    )
    from flowrunner.plugins.pocketflow import pocketflow_type
    from flowrunner.scripting import Sandbox

__version__ = "0.1.0"

_LAZY = {
    "BatchPolicy": "flowrunner.engine",
    "Context": "flowrunner.engine",
    "Flow": "flowrunner.engine",
    "Node": "flowrunner.engine",
    "NodeEvent": "flowrunner.engine",
    "RetryPolicy": "flowrunner.engine",
    "RunScoped": "flowrunner.engine",
    "CompiledFlow": "flowrunner.definition",
    "FlowDefinition": "flowrunner.definition",
    "compile_flow": "flowrunner.definition",
    "load_flow": "flowrunner.definition",
    "Call": "flowrunner.nodes",
    "DefinedNode": "flowrunner.nodes",
    "DefinedNodeType": "flowrunner.nodes",
    "NodeType": "flowrunner.plugins",
    "NodeTypeRegistry": "flowrunner.plugins",
    "builtin_registry": "flowrunner.plugins",
    "FunctionNodeType": "flowrunner.plugins",
    "Plugin": "flowrunner.plugins",
    "pocketflow_type": "flowrunner.plugins.pocketflow",
    "Sandbox": "flowrunner.scripting",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'flowrunner' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "BatchPolicy",
    "Call",
    "CompiledFlow",
    "Context",
    "DefinedNode",
    "DefinedNodeType",
    "DefinitionError",
    "ExecutionError",
    "Flow",
    "FlowDefinition",
    "FlowrunnerError",
    "FunctionNodeType",
    "Node",
    "NodeEvent",
    "NodeFailed",
    "NodeType",
    "NodeTypeRegistry",
    "Plugin",
    "Problem",
    "RetryPolicy",
    "RunScoped",
    "Sandbox",
    "__version__",
    "builtin_registry",
    "compile_flow",
    "load_flow",
    "pocketflow_type",
]
