"""Script built-ins: ``transform`` (output = what a JavaScript body returns) and ``condition``
(next node = what a JavaScript body returns).

Both run their code param in the flow's sandbox with ``input``, ``shared``, ``params`` (the
node's other params, resolved), ``results``, ``secrets``, ``execution`` and, on an error edge,
``error`` in scope (plus ``item``/``index`` in a batch). Writes to ``shared`` persist into the
run; ``console.*`` lines become the run's log lines. The code params are never interpolated:
``${`` inside a script is JavaScript's own template syntax.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from flowrunner.errors import ExecutionError, SandboxError
from flowrunner.expressions import SCOPE_NAMES, NotNative, Program, compile_return
from flowrunner.nodes.base import Call, DefinedNode, DefinedNodeType, run_script
from flowrunner.nodes.spec import BuildEnv

if TYPE_CHECKING:
    from flowrunner.scripting.host import ScriptHost

SANDBOX_HINT = "compile the flow with the JavaScript sandbox (scripts=Sandbox(...))"


class ScriptNode(DefinedNode):
    """Runs the body in ``code_param`` once per call; subclasses turn its value into a result.

    A body that is one ``return <value>`` in the native subset (``expressions.jsnative``:
    ``return {n: input.n + 1};``, ``return input.total > 100``) is evaluated without the
    sandbox, with V8's answer; the values it meets may still send it there (an object in
    arithmetic, a method...). Not when the body names ``shared``: the sandbox hands ``shared``
    back through JSON, which the run then takes (1.0 becomes 1...), and a native answer must
    leave the run as V8 would.
    """

    __slots__ = ("_host", "_native", "_script")
    replayable = True

    code_param: ClassVar[str] = "script"

    def setup(self, env: BuildEnv) -> None:
        if env.scripts is None:
            raise SandboxError(
                f"'{self.spec.type}' nodes need the JavaScript sandbox: " + SANDBOX_HINT
            )
        self._host: ScriptHost = env.scripts
        self._script = str(self.spec.params[self.code_param])
        self._native: Program | None = (
            None if "shared" in self._script else compile_return(self._script, SCOPE_NAMES)
        )

    def script_scope(self, call: Call) -> dict[str, Any]:
        params = {k: v for k, v in call.params.items() if k not in self.code_params}
        scope = {**self.scope(call.ctx), "params": params}
        if call.index is not None:
            scope["item"] = call.item
            scope["index"] = call.index
        return scope

    async def run_script(self, call: Call) -> Any:
        scope = self.script_scope(call)
        if self._native is not None:
            try:
                return self._native.evaluate(scope)
            except NotNative:
                pass  # the values need V8
        return await run_script(self._host, self._script, scope, call.ctx)


class TransformNode(ScriptNode):
    __slots__ = ()

    code_params = frozenset({"script"})
    code_param = "script"
    actions = frozenset()  # its value is its output; only a post hook could route it

    async def work(self, call: Call) -> Any:
        return await self.run_script(call)


class ConditionNode(ScriptNode):
    """The body returns the action: a non-empty string, or a boolean ("true"/"false").
    The input passes through, as with ``switch``."""

    __slots__ = ()

    code_params = frozenset({"condition_script"})
    code_param = "condition_script"

    async def work(self, call: Call) -> Any:
        value = await self.run_script(call)
        if isinstance(value, bool):
            call.action = "true" if value else "false"
        elif isinstance(value, str) and value:
            call.action = value
        else:
            shown = "null" if value is None else type(value).__name__
            raise ExecutionError(
                f"node '{self.node_id}': condition_script must return an action name or a "
                f"boolean, got {shown}",
                node_id=self.node_id,
            )
        return call.input


def _schema(code_param: str) -> dict[str, Any]:
    # Other params are free-form data for the script (``params.threshold``...).
    return {
        "type": "object",
        "properties": {code_param: {"type": "string", "minLength": 1}},
        "required": [code_param],
    }


TRANSFORM = DefinedNodeType(
    "transform",
    "Run a JavaScript function body (params.script); its return value is the output.",
    TransformNode,
    _schema("script"),
)
CONDITION = DefinedNodeType(
    "condition",
    "Run a JavaScript function body (params.condition_script) that returns the next action "
    '(a string, or a boolean for "true"/"false"); the input passes through.',
    ConditionNode,
    _schema("condition_script"),
)

# (type, aliases) of this module's built-ins.
SCRIPT_TYPES: list[tuple[DefinedNodeType, tuple[str, ...]]] = [
    (TRANSFORM, ()),
    (CONDITION, ()),
]
