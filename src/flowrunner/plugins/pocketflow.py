"""PocketFlow nodes as Flowrunner node types, unchanged.

``pocketflow_type(SummarizeNode, "acme.summarize")`` wraps a PocketFlow ``Node``,
``BatchNode``, ``AsyncNode`` (or any class with their ``prep``/``exec``/``post`` methods): each
visit makes a fresh instance (PocketFlow nodes keep per-run attributes such as ``cur_retry``),
hands it the node's resolved ``params`` (``set_params``) and the run's ``shared`` state, and
runs its ``prep → exec (with its own retries and fallback) → post``. What ``exec`` returns is
the node's output; what ``post`` returns is the action (None: ``default``). Synchronous nodes
run in a thread, as PocketFlow's blocking calls (LLM clients, ``time.sleep``) expect.

PocketFlow is not imported here: a class is recognised by its methods, so the adapter costs
nothing to an install without it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flowrunner.errors import PluginError
from flowrunner.nodes.base import Call, DefinedNode
from flowrunner.nodes.spec import BuildEnv, NodeSpec

if TYPE_CHECKING:
    from flowrunner.engine import Node


@dataclass(frozen=True, slots=True)
class PocketFlowNodeType:
    """A node type whose nodes run one PocketFlow node class."""

    name: str
    description: str
    node_class: type
    params_schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "object"})
    actions: frozenset[str] | None = None
    init_kwargs: Mapping[str, Any] = field(default_factory=dict)
    code_params: frozenset[str] = frozenset()

    @property
    def blocking(self) -> bool:
        return not _is_async(self.node_class)

    def build(self, spec: NodeSpec, env: BuildEnv) -> Node:
        return PocketFlowNode(spec, env, self.node_class, self.init_kwargs)

    def possible_actions(self, params: Mapping[str, Any]) -> frozenset[str] | None:
        return self.actions


def pocketflow_type(
    node_class: type,
    name: str,
    *,
    description: str | None = None,
    params_schema: Mapping[str, Any] | None = None,
    actions: frozenset[str] | set[str] | None = None,
    **init_kwargs: Any,
) -> PocketFlowNodeType:
    """Register ``node_class`` (a PocketFlow node class) as node type ``name``.

    ``init_kwargs`` go to its constructor (``max_retries=3, wait=1``); the description
    defaults to the class docstring.
    """
    missing = [m for m in ("prep", "exec", "post", "set_params") if not hasattr(node_class, m)]
    if not isinstance(node_class, type) or missing:
        raise PluginError(
            f"{node_class!r} is not a PocketFlow node class (missing {', '.join(missing)})",
            node_type=name,
        )
    doc = (node_class.__doc__ or "").strip().splitlines()
    return PocketFlowNodeType(
        name=name,
        description=description if description is not None else (doc[0] if doc else name),
        node_class=node_class,
        params_schema=params_schema if params_schema is not None else {"type": "object"},
        actions=frozenset(actions) if actions is not None else None,
        init_kwargs=dict(init_kwargs),
    )


class PocketFlowNode(DefinedNode):
    __slots__ = ("_kwargs", "_node_class")

    def __init__(
        self, spec: NodeSpec, env: BuildEnv, node_class: type, kwargs: Mapping[str, Any]
    ) -> None:
        self._node_class = node_class
        self._kwargs = kwargs
        super().__init__(spec, env)

    async def work(self, call: Call) -> Any:
        node = self._node_class(**self._kwargs)
        node.set_params(call.params)
        shared = call.ctx.shared
        if _is_async(self._node_class):
            prepared = await node.prep_async(shared)
            output = await node._exec(prepared)
            action = await node.post_async(shared, prepared, output)
        else:
            output, action = await asyncio.to_thread(_run_sync, node, shared)
        if action is not None:
            call.action = str(action)
        return output


def _run_sync(node: Any, shared: Any) -> tuple[Any, Any]:
    # PocketFlow's own ``_run`` minus the return of exec's result, which is our output.
    prepared = node.prep(shared)
    output = node._exec(prepared)
    return output, node.post(shared, prepared, output)


def _is_async(node_class: type) -> bool:
    return hasattr(node_class, "prep_async") and asyncio.iscoroutinefunction(
        getattr(node_class, "_exec", None)
    )
