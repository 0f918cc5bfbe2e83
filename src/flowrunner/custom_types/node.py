"""The node type behind an account's definition, and the engine node that runs its script.

The script is a function body run in the flow's V8 sandbox with the scope of a ``transform``
node: ``input``, ``shared``, ``params`` (the node's params, resolved), ``results``,
``secrets``, ``execution``, ``error`` on an error edge, and ``item``/``index`` in a batch.
Its return value is the node's output. A type that declares ``actions`` picks one by
returning ``{action: "<name>", output: <value>}`` (exactly those two keys); anything else is
the output and follows ``default``.

The node's params are all data (none holds code): they are resolved like any node's, and the
script itself comes from the definition, never from the flow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flowrunner.custom_types.store import CustomType
from flowrunner.errors import ExecutionError, SandboxError
from flowrunner.nodes.base import Call, DefinedNode, run_script
from flowrunner.nodes.spec import BuildEnv, NodeSpec
from flowrunner.plugins.registry import TypeSource

if TYPE_CHECKING:
    from flowrunner.engine import Node
    from flowrunner.scripting.host import ScriptHost

ROUTED = frozenset({"action", "output"})


class AccountScriptNode(DefinedNode):
    __slots__ = ("_actions", "_body", "_host")

    def __init__(self, spec: NodeSpec, env: BuildEnv, definition: CustomType) -> None:
        self._body = definition.spec.script
        self._actions = frozenset(definition.spec.actions)
        super().__init__(spec, env)

    def setup(self, env: BuildEnv) -> None:
        if env.scripts is None:
            raise SandboxError(
                f"'{self.spec.type}' nodes run JavaScript: compile the flow with the sandbox"
            )
        self._host: ScriptHost = env.scripts

    async def work(self, call: Call) -> Any:
        scope = {**self.scope(call.ctx), "params": call.params}
        if call.index is not None:
            scope["item"] = call.item
            scope["index"] = call.index
        value = await run_script(self._host, self._body, scope, call.ctx)
        if self._actions and isinstance(value, Mapping) and set(value) == ROUTED:
            action = value["action"]
            if action != "default" and action not in self._actions:
                raise ExecutionError(
                    f"node '{self.node_id}': the script of '{self.spec.type}' picked the "
                    f"action {action!r}, which the type does not declare "
                    f"({', '.join(sorted(self._actions))})",
                    node_id=self.node_id,
                )
            call.action = None if action == "default" else str(action)
            return value["output"]
        return value


@dataclass(frozen=True, slots=True)
class AccountNodeType:
    """One version of an account's node type, as the registry holds it."""

    definition: CustomType

    @property
    def name(self) -> str:
        return self.definition.spec.name

    @property
    def description(self) -> str:
        return self.definition.spec.description

    @property
    def params_schema(self) -> Mapping[str, Any]:
        return self.definition.spec.params

    @property
    def code_params(self) -> frozenset[str]:
        return frozenset()

    @property
    def actions(self) -> frozenset[str]:
        return frozenset(self.definition.spec.actions)

    @property
    def blocking(self) -> bool:
        return False

    def possible_actions(self, params: Mapping[str, Any]) -> frozenset[str]:
        return self.actions

    def build(self, spec: NodeSpec, env: BuildEnv) -> Node:
        return AccountScriptNode(spec, env, self.definition)

    @property
    def source(self) -> TypeSource:
        return TypeSource(
            kind="account",
            version=str(self.definition.version),
            origin=f"account node type, version {self.definition.version}",
        )
