"""Parsing and validating flows off the event loop, a few at a time, within per-flow limits.

Parsing a flow with positions and checking it is pure CPU work that grows with the flow: a
1 MB flow takes seconds. Done on the event loop it stalls every request of the process
(``/healthz`` included) for that long. So it runs in a small pool of threads of its own: the
loop only awaits it, and a handful of big uploads can only occupy this pool (the others
queue for it), never the loop or the default executor other work relies on. Threads rather
than processes: a parsed ``FlowDefinition`` (and the plugin registry it is checked against)
lives in this process, and the parser spends much of its time in C and in short Python steps,
so the loop still gets the interpreter between them.

The text's size is checked on the loop before anything is queued: a flow over the limit
costs one length check, not a place in the queue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TypeVar

from flowrunner.definition import FlowDefinition, load_flow, validate_flow
from flowrunner.definition.limits import FlowLimits
from flowrunner.errors import Problem
from flowrunner.plugins import NodeTypeRegistry, builtin_registry

T = TypeVar("T")

DEFAULT_LIMITS = FlowLimits(max_bytes=1_048_576, max_nodes=1000, max_script_bytes=65_536)
"""The settings' defaults (config.py), for a registry built without settings."""


class FlowChecker:
    """Loads and validates flow text in a bounded thread pool, with ``limits`` applied."""

    def __init__(
        self,
        limits: FlowLimits = DEFAULT_LIMITS,
        *,
        workers: int = 2,
        registry: Callable[[], NodeTypeRegistry] = builtin_registry,
    ) -> None:
        # The current node-type registry (plugins come and go): asked once per check.
        self.registry = registry
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.limits = limits
        # Threads start on first use and stay few: ``workers`` is the most flows checked at
        # once; further ones wait in the pool's queue.
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="flow-check")

    async def load(self, yaml: str, *, registry: NodeTypeRegistry | None = None) -> FlowDefinition:
        """The validated definition; DefinitionError (FlowTooLarge for the text) otherwise.
        ``registry``: an account's own (default: the server's current one)."""
        self.limits.check_text(yaml)
        return await self._off_loop(
            partial(load_flow, yaml, limits=self.limits, registry=registry or self.registry())
        )

    async def validate(
        self, yaml: str, *, registry: NodeTypeRegistry | None = None
    ) -> list[Problem]:
        """Every problem in ``yaml``; FlowTooLarge when the text is over the limit."""
        self.limits.check_text(yaml)
        return await self._off_loop(
            partial(validate_flow, yaml, limits=self.limits, registry=registry or self.registry())
        )

    def close(self) -> None:
        """Stop the threads once the checks in progress end; queued ones are dropped."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _off_loop(self, check: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, check)
