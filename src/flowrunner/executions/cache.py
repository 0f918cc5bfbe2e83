"""Compiled flows, cached: a stored version never changes, so neither does its engine graph.

One compiled flow serves any number of concurrent runs (it holds no per-run state), so the
cache is keyed by the version's checksum, plus (account, flow, number) so that a run of a
version seen before reads no YAML at all.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import TYPE_CHECKING

from flowrunner.definition import CompiledFlow, compile_flow, load_flow
from flowrunner.plugins import NodeTypeRegistry
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
        registry: NodeTypeRegistry | None = None,
        max_steps: int = 10_000,
        size: int = 256,
    ) -> None:
        self._scripts = scripts
        self._registry = registry
        self._max_steps = max_steps
        self._size = size
        self._flows: OrderedDict[str, CompiledFlow] = OrderedDict()
        # (account, flow, number) -> checksum: a stored version never changes, so a run of a
        # version seen before needs no read of its YAML at all.
        self._pins: OrderedDict[tuple[str, str, int], str] = OrderedDict()

    async def load(
        self, flows: FlowStore, account_id: str, flow_id: str, number: int
    ) -> CompiledFlow:
        """The compiled version ``number`` of a flow, reading the store only on a miss."""
        pin = (account_id, flow_id, number)
        checksum = self._pins.get(pin)
        if checksum is not None and checksum in self._flows:
            self._flows.move_to_end(checksum)
            return self._flows[checksum]
        version = await flows.get_version(account_id, flow_id, number)
        compiled = self._hit(version)
        if compiled is None:
            # Parsing and compiling a big flow takes long enough to stall every request on
            # the loop: it runs in a thread, and only the cache is touched back on the loop.
            compiled = await asyncio.to_thread(self._compile, version)
            self._keep(version, compiled)
        self._pins[pin] = version.checksum
        if len(self._pins) > self._size:
            self._pins.popitem(last=False)
        return compiled

    def get(self, version: FlowVersion) -> CompiledFlow:
        compiled = self._hit(version)
        if compiled is None:
            compiled = self._compile(version)
            self._keep(version, compiled)
        return compiled

    def _hit(self, version: FlowVersion) -> CompiledFlow | None:
        compiled = self._flows.get(version.checksum)
        if compiled is not None:
            self._flows.move_to_end(version.checksum)
        return compiled

    def _compile(self, version: FlowVersion) -> CompiledFlow:
        # Stored versions passed the per-flow limits when saved: none are applied again, so
        # lowering a limit never stops a flow that was accepted from running.
        definition = load_flow(version.yaml, registry=self._registry)
        return compile_flow(
            definition, registry=self._registry, scripts=self._scripts, max_steps=self._max_steps
        )

    def _keep(self, version: FlowVersion, compiled: CompiledFlow) -> None:
        self._flows[version.checksum] = compiled
        if len(self._flows) > self._size:
            self._flows.popitem(last=False)
