"""The graph engine ("Flowlib" for Python): nodes, flows, policies and run events.

A ``Node`` runs prep → exec → post and returns an action; a ``Flow`` routes between nodes by
action and is itself a node, so flows nest. The engine imports only the standard library and
``flowrunner.errors``: storage, HTTP and YAML live in the layers around it.
"""

from flowrunner.engine.batch import Unbatched
from flowrunner.engine.branches import BranchResult, run_branches
from flowrunner.engine.context import CheckpointHook, Context, ErrorInfo, SizeCheck
from flowrunner.engine.events import Checkpoint, NodeEvent, Observer, RunResult
from flowrunner.engine.flow import Flow
from flowrunner.engine.node import Node
from flowrunner.engine.pause import Pause
from flowrunner.engine.policies import BatchPolicy, RetryPolicy
from flowrunner.engine.scoped import RunScoped, ScopedValues

__all__ = [
    "BatchPolicy",
    "BranchResult",
    "Checkpoint",
    "CheckpointHook",
    "Context",
    "ErrorInfo",
    "Flow",
    "Node",
    "NodeEvent",
    "Observer",
    "Pause",
    "RetryPolicy",
    "RunResult",
    "RunScoped",
    "ScopedValues",
    "SizeCheck",
    "Unbatched",
    "run_branches",
]
