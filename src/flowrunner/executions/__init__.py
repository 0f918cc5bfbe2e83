"""Runs of stored flows: the runner, executors, crash recovery, live events and the service.

``ExecutionService`` is what the API uses; ``Runner`` runs one execution from its pinned flow
version (whoever calls it); ``LocalExecutor`` runs them in this process with bounded
concurrency and leases; ``Recovery`` resumes runs whose executor died; the ``EventBus`` carries
live events to subscribers.
"""

from flowrunner.executions.bus import EventBus, InProcessBus, Subscription, Topic
from flowrunner.executions.cache import FlowCache
from flowrunner.executions.executor import Executor, LocalExecutor
from flowrunner.executions.recovery import Recovery
from flowrunner.executions.runner import RunControl, Runner, SecretsResolver
from flowrunner.executions.service import ExecutionService, Started
from flowrunner.executions.states import TERMINAL, is_terminal, transition

__all__ = [
    "TERMINAL",
    "EventBus",
    "ExecutionService",
    "Executor",
    "FlowCache",
    "InProcessBus",
    "LocalExecutor",
    "Recovery",
    "RunControl",
    "Runner",
    "SecretsResolver",
    "Started",
    "Subscription",
    "Topic",
    "is_terminal",
    "transition",
]
