"""Flowrunner: YAML-driven workflow orchestration.

The names in ``__all__`` are the public surface for plugin authors and embedders; everything
else may change between releases.
"""

from flowrunner.errors import (
    DefinitionError,
    ExecutionError,
    FlowrunnerError,
    NodeFailed,
    Problem,
)

__version__ = "0.1.0"

__all__ = [
    "DefinitionError",
    "ExecutionError",
    "FlowrunnerError",
    "NodeFailed",
    "Problem",
    "__version__",
]
