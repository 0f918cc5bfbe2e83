"""Token accounting seen from a node: a run-scoped meter the runner provides.

The runner gives a run a ``USAGE_METER`` (a run-scoped value; executions/llm_usage.py):
``check`` refuses a call when the account's monthly token budget is spent, ``record`` adds a
call's usage to the node's and the run's totals (and the account's month). Without a meter
(``flowrunner run``) usage is only reported in the node's output.
"""

from __future__ import annotations

from typing import Protocol

from flowrunner.engine import RunScoped
from flowrunner.nodes.llm.types import Usage


class UsageMeter(Protocol):
    async def check(self, node_id: str) -> None:
        """Raise ``LLMBudgetExceeded`` when the account may not call a model now."""
        ...

    async def record(self, node_id: str, usage: Usage) -> None: ...


USAGE_METER: RunScoped[UsageMeter | None] = RunScoped("usage_meter", None)
