"""The engine node behind a ``FunctionNodeType``: a ``DefinedNode`` whose work is a function."""

from __future__ import annotations

from typing import Any

from flowrunner.nodes.base import Call, DefinedNode
from flowrunner.nodes.spec import BuildEnv, NodeSpec
from flowrunner.plugins.contract import Work, call_work


class FunctionNode(DefinedNode):
    __slots__ = ("_function", "_in_thread")

    def __init__(self, spec: NodeSpec, env: BuildEnv, work: Work, *, blocking: bool) -> None:
        self._function = work
        # Not ``_blocking``: the engine's Node has an attribute of that name.
        self._in_thread = blocking
        super().__init__(spec, env)

    async def work(self, call: Call) -> Any:
        return await call_work(self._function, call, blocking=self._in_thread)
