"""Compiled flows, cached: a stored version never changes, so neither does its engine graph.

One compiled flow serves any number of concurrent runs (it holds no per-run state), so the
cache is keyed by the version's checksum and the node-type registry's generation (a plugin
reload makes a new registry: a flow is compiled again against the new plugin code, while runs
in flight keep the graph they started with) and scope (an account's own node types: a new
version of one makes a new scope), plus (account, flow, number) so that a run of a
version seen before reads no YAML at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from cachetools import LRUCache

from flowrunner.definition import CompiledFlow, compile_flow, load_flow
from flowrunner.plugins import NodeTypeRegistry, builtin_registry
from flowrunner.storage import FlowStore, FlowVersion

if TYPE_CHECKING:
    from flowrunner.scripting.host import ScriptHost


class FlowCache:
    """Compiled flows by version checksum (LRU): a version's YAML never changes, so neither
    does its compiled graph, and a compiled flow serves concurrent runs."""

    def __init__(
        self,
        *,
        scripts: ScriptHost | None = None,
        registry: NodeTypeRegistry | Callable[[], NodeTypeRegistry] | None = None,
        types: Callable[[str], Awaitable[NodeTypeRegistry]] | None = None,
        max_steps: int = 10_000,
        size: int = 256,
    ) -> None:
        self._scripts = scripts
        self._registry = registry
        # The registry of one account (the server's types and the account's own JavaScript
        # node types); without it, ``registry`` serves every account.
        self._types = types
        self._max_steps = max_steps
        self._flows: LRUCache[tuple[tuple[int, str], str], CompiledFlow] = LRUCache(size)
        # (account, flow, number) -> checksum: a stored version never changes, so a run of a
        # version seen before needs no read of its YAML at all.
        self._pins: LRUCache[tuple[str, str, int], str] = LRUCache(size)

    async def load(
        self, flows: FlowStore, account_id: str, flow_id: str, number: int
    ) -> CompiledFlow:
        """The compiled version ``number`` of a flow, reading the store only on a miss."""
        pin = (account_id, flow_id, number)
        registry = await self._types(account_id) if self._types else self._current()
        checksum = self._pins.get(pin)
        hit = None if checksum is None else self._flows.get((registry.cache_key, checksum))
        if hit is not None:
            return hit
        version = await flows.get_version(account_id, flow_id, number)
        key = (registry.cache_key, version.checksum)
        compiled = self._flows.get(key)
        if compiled is None:
            # Parsing and compiling a big flow takes long enough to stall every request on
            # the loop: it runs in a thread, and only the cache is touched back on the loop.
            compiled = await asyncio.to_thread(self._compile, version, registry)
            self._flows[key] = compiled
        self._pins[pin] = version.checksum
        return compiled

    def get(self, version: FlowVersion) -> CompiledFlow:
        registry = self._current()
        key = (registry.cache_key, version.checksum)
        compiled = self._flows.get(key)
        if compiled is None:
            compiled = self._flows[key] = self._compile(version, registry)
        return compiled

    def _current(self) -> NodeTypeRegistry:
        if self._registry is None:
            self._registry = builtin_registry()
        if isinstance(self._registry, NodeTypeRegistry):
            return self._registry
        return self._registry()

    def _compile(self, version: FlowVersion, registry: NodeTypeRegistry) -> CompiledFlow:
        # Stored versions passed the per-flow limits when saved: none are applied again, so
        # lowering a limit never stops a flow that was accepted from running.
        definition = load_flow(version.yaml, registry=registry)
        return compile_flow(
            definition, registry=registry, scripts=self._scripts, max_steps=self._max_steps
        )
