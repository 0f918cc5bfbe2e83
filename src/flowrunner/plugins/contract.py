"""The plugin contract: what a plugin declares, and the easy way to write a node type.

A plugin is a ``Plugin``: its name, version, description, author and the node types it
provides. Each node type has the ``NodeType`` shape (registry.py); ``FunctionNodeType`` makes
one from a plain function, and ``DefinedNodeType`` from a ``DefinedNode`` subclass. The
catalog also reads two optional attributes of a node type: ``actions`` (the actions its nodes
can return besides ``default``) and ``blocking`` (its work runs in a thread).

``check_plugin`` checks a plugin before any of its types is registered, so a broken plugin is
refused whole, with every problem named.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flowrunner.errors import PluginError
from flowrunner.plugins.registry import NodeType, check_shape, schema_problem

if TYPE_CHECKING:
    from flowrunner.engine import Node
    from flowrunner.nodes.base import Call
    from flowrunner.nodes.spec import BuildEnv, NodeSpec

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)*$")
"""Plugin and node-type names: dotted words (``acme.crm.lookup``)."""
MAX_NAME = 100
MAX_TYPES = 200
"""Node types one plugin may declare."""

Work = Callable[["Call"], Any] | Callable[["Call"], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Plugin:
    """What a plugin module (``plugin = Plugin(...)``) or entry point declares."""

    name: str
    version: str
    node_types: Sequence[NodeType]
    description: str = ""
    author: str = ""


@dataclass(frozen=True, slots=True)
class FunctionNodeType:
    """A node type whose work is one function of the visit's ``Call``.

    ``work(call)`` gets the resolved ``call.params``, ``call.input`` (and ``call.item`` in a
    batch); its return value is the node's output; it picks the next edge by setting
    ``call.action`` to one of ``actions``. An ``async def`` runs on the event loop; a plain
    function with ``blocking=True`` runs in a thread (for blocking I/O or heavy CPU).
    """

    name: str
    description: str
    work: Work
    params_schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "object"})
    actions: frozenset[str] | None = frozenset()
    blocking: bool = False
    code_params: frozenset[str] = frozenset()

    def build(self, spec: NodeSpec, env: BuildEnv) -> Node:
        from flowrunner.plugins.function_node import FunctionNode

        return FunctionNode(spec, env, self.work, blocking=self.blocking)

    def possible_actions(self, params: Mapping[str, Any]) -> frozenset[str] | None:
        return self.actions


def check_plugin(plugin: object, origin: str) -> Plugin:
    """``plugin`` if it keeps the contract; PluginError listing every problem otherwise."""
    if not isinstance(plugin, Plugin):
        raise PluginError(f"{origin}: {plugin!r} is not a flowrunner.plugins.Plugin")
    problems: list[str] = []
    if (
        not isinstance(plugin.name, str)
        or not NAME.match(plugin.name)
        or len(plugin.name) > MAX_NAME
    ):
        problems.append(f"name {plugin.name!r} is not a dotted name (letters, digits, _ and -)")
    if not isinstance(plugin.version, str) or not plugin.version.strip():
        problems.append("version must be a non-empty string")
    for attr in ("description", "author"):
        if not isinstance(getattr(plugin, attr), str):
            problems.append(f"{attr} must be a string")
    types = plugin.node_types
    if isinstance(types, str | bytes) or not isinstance(types, Sequence) or not types:
        problems.append("node_types must be a non-empty list of node types")
        types = ()
    elif len(types) > MAX_TYPES:
        problems.append(f"declares {len(types)} node types (at most {MAX_TYPES})")
    seen: set[str] = set()
    for index, node_type in enumerate(types):
        try:
            check_shape(node_type)
        except PluginError as exc:
            problems.append(f"node_types[{index}]: {exc.message}")
            continue
        name = node_type.name
        if not isinstance(name, str) or not NAME.match(name) or len(name) > MAX_NAME:
            problems.append(f"node_types[{index}]: name {name!r} is not a dotted name")
        elif name in seen:
            problems.append(f"node_types[{index}]: '{name}' is declared twice")
        seen.add(str(name))
        problem = schema_problem(node_type.params_schema)
        if problem is not None:
            problems.append(f"node type '{name}': {problem}")
        if not isinstance(getattr(node_type, "blocking", False), bool):
            problems.append(f"node type '{name}': blocking must be true or false")
        actions = getattr(node_type, "actions", None)
        if actions is not None and (
            isinstance(actions, str) or not all(isinstance(a, str) and a for a in actions)
        ):
            problems.append(f"node type '{name}': actions must be a set of non-empty strings")
    if problems:
        label = plugin.name if isinstance(plugin.name, str) else repr(plugin.name)
        raise PluginError(
            f"{origin}: plugin '{label}' is invalid: " + "; ".join(problems), plugin=label
        )
    return plugin


def type_actions(node_type: NodeType) -> list[str] | None:
    """The actions a type declares (``default`` and ``error`` implied); None: decided at run
    time."""
    actions = getattr(node_type, "actions", None)
    if actions is None:
        possible = getattr(node_type, "possible_actions", None)
        if callable(possible):
            try:
                actions = possible({})
            except Exception:  # a type may need real params to say; then it is unknown
                actions = None
    return None if actions is None else sorted(actions)


def is_async(work: Work) -> bool:
    return inspect.iscoroutinefunction(work)


async def call_work(work: Work, call: Call, *, blocking: bool) -> Any:
    """Run ``work`` the way its kind asks: awaited, in a thread, or inline."""
    if is_async(work):
        return await work(call)
    if blocking:
        return await asyncio.to_thread(work, call)
    return work(call)


def as_plugin(obj: object, *, name: str, version: str, origin: str) -> Plugin:
    """The checked ``Plugin`` an entry point or module offers.

    ``obj`` may be a ``Plugin``, a node type or a list of them (the plugin is then named
    ``name`` at ``version``), or a zero-argument callable returning any of these.
    """
    if not isinstance(obj, Plugin | list | tuple) and not _is_type(obj) and callable(obj):
        try:
            obj = obj()
        except Exception as exc:  # third-party code: its failure is the plugin's error
            raise PluginError(
                f"{origin}: factory failed: {type(exc).__name__}: {exc}", plugin=name
            ) from exc
    if isinstance(obj, Plugin):
        return check_plugin(obj, origin)
    items: list[NodeType] = []
    for item in obj if isinstance(obj, list | tuple) else [obj]:
        if not isinstance(item, NodeType) or isinstance(item, type):
            raise PluginError(
                f"{origin}: {item!r} is not a node type (needs name, description, "
                "params_schema, code_params and build)",
                plugin=name,
            )
        items.append(item)
    return check_plugin(Plugin(name=name, version=version, node_types=items), origin)


def _is_type(obj: object) -> bool:
    return isinstance(obj, NodeType) and not isinstance(obj, type)
