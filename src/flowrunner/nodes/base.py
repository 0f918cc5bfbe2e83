"""The engine node behind every YAML-defined node, so a built-in only writes its work.

``prep`` resolves the node's ``${...}`` params against the run scope (and, for a batch node,
resolves ``batch.items`` and the params once per item); ``exec`` calls ``work``; ``post``
records ``shared["result"]`` (and the original's ``shared["<kind>_result"]``, see
``result_keys``) and returns the action. JavaScript hooks (``hooks: prep/exec/
post``) run through the flow's script host at the matching stage; a prep hook and the
params' JavaScript expressions go to the sandbox in one call where they can (``_joined_prep``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

from flowrunner.engine import BatchPolicy, Context, Node, RetryPolicy, RunScoped, Unbatched
from flowrunner.errors import ExpressionError, FlowrunnerError, SandboxError
from flowrunner.expressions import Expression, Resolver, compile_value, thaw
from flowrunner.expressions.batch import (
    ParamPath,
    Prefetched,
    Slots,
    fill_slots,
    interpolated_codes,
    js_expressions,
    prefetch,
    slot_places,
    v8_codes,
    whole_places,
)
from flowrunner.fairness import idle, reclaim
from flowrunner.nodes.result_keys import result_key
from flowrunner.nodes.spec import BuildEnv, NodeSpec

if TYPE_CHECKING:
    from flowrunner.scripting.host import JoiningHost, ScriptHost, ScriptResult

SECRETS: RunScoped[Mapping[str, Any]] = RunScoped("secrets", MappingProxyType({}))
"""The run's secrets, ``${secrets.X}``: a run-scoped value (``ctx.scoped(SECRETS)``), never
in ``shared`` or ``execution``, which are checkpointed and shown in events."""

TOOL_ARGUMENTS: RunScoped[tuple[Node, Mapping[str, Any]] | None] = RunScoped("tool_arguments", None)
"""Params laid over a node's resolved params when an agent runs it as a tool: (the node,
the model's arguments). Keyed by the node object, so nodes the tool node runs in turn (a
sub-flow's) never see them; the arguments are values, never evaluated as expressions."""


@dataclass(frozen=True, slots=True)
class _PrepPlan:
    """What a node needs to send its params' expressions and its prep hook in one call:
    the expressions that may need V8, where whole-value ones put their values, and the codes
    inside interpolated text (a visit that needs V8 for one of those makes two calls)."""

    expressions: tuple[Expression, ...]
    places: tuple[tuple[ParamPath, str], ...]
    interpolated: frozenset[str]


@dataclass(slots=True)
class Call:
    """One unit of work of a node visit: resolved params, plus the item in a batch."""

    ctx: Context
    params: dict[str, Any]
    input: Any
    item: Any = None
    index: int | None = None
    # Set by ``work`` to pick the next node (a switch, a sub-flow's ending action).
    action: str | None = None


class DefinedNode(Node):
    """Base for node types written in YAML; subclasses implement ``work`` (and ``route``)."""

    __slots__ = (
        "_codes",
        "_hooks",
        "_items",
        "_js",
        "_params",
        "_prep_plan",
        "_raw_params",
        "_result_key",
        "spec",
    )

    # Params that hold code: kept verbatim, never interpolated.
    code_params: ClassVar[frozenset[str]] = frozenset()
    # Actions a node of this type can return besides ``default`` (and ``error``, which every
    # node takes when it fails); None: not known before it runs, so any ``next`` is plausible.
    actions: ClassVar[frozenset[str] | None] = None
    # True for types whose node only computes from the run's state (no effect outside the
    # run, cheap to do again): the checkpoint between two such nodes may be merged into a
    # later write, since a crash in between only makes the run compute them again
    # (executions.recorder).
    replayable: ClassVar[bool] = False

    def __init__(self, spec: NodeSpec, env: BuildEnv) -> None:
        retry = spec.retry
        batch = spec.batch
        super().__init__(
            node_id=spec.id,
            retry=RetryPolicy(
                retry.max_retries, retry.wait, retry.backoff, retry.max_wait, retry.jitter
            )
            if retry
            else RetryPolicy(),
            batch=BatchPolicy(batch.strategy, batch.max_parallel) if batch else None,
            timeout=spec.timeout or None,
        )
        self.spec = spec
        label = f"node '{spec.id}'"
        self._params: Resolver = compile_value(spec.params, label, skip=self.code_params)
        self._items: Resolver | None = (
            compile_value(batch.items, label, path="batch.items")
            if batch and batch.items is not None
            else None
        )
        # The expressions of each compiled value that may need V8: two or more that do at a
        # visit are evaluated in one sandbox call rather than one call each.
        # A host written before ``evaluate_expressions`` existed gets one call per expression.
        batches = callable(getattr(env.scripts, "evaluate_expressions", None))
        self._codes: dict[int, tuple[Expression, ...]] = {
            id(r): js_expressions(r)
            for r in (self._params, self._items)
            if r is not None and batches
        }
        # A host written before ``evaluate_then_run`` existed gets two calls: expressions, hook.
        joins = callable(getattr(env.scripts, "evaluate_then_run", None))
        self._prep_plan: _PrepPlan | None = (
            _PrepPlan(
                js_expressions(self._params),
                whole_places(self._params),
                interpolated_codes(self._params),
            )
            if joins and "prep" in spec.hooks and self._params.needs_js
            else None
        )
        self._raw_params = spec.params  # read-only: shared by every run of this node
        self._js: ScriptHost | None = env.scripts
        self._hooks: Mapping[str, str] = spec.hooks
        self._result_key = result_key(spec.type, spec.params)
        self.setup(env)

    def setup(self, env: BuildEnv) -> None:
        """Compile-time preparation for subclasses (load files, compile extra templates)."""

    @classmethod
    def check_params(
        cls, params: Mapping[str, Any], base_path: Path | None
    ) -> list[tuple[tuple[str | int, ...], str]]:
        """Load-time checks beyond the params schema: (param path, message) per problem."""
        return []

    @classmethod
    def subflow_paths(cls, params: Mapping[str, Any]) -> list[tuple[tuple[str, ...], str]]:
        """Flow files this node runs, known from its params: (param path, relative path)."""
        return []

    @classmethod
    def subflow_refs(
        cls, params: Mapping[str, Any]
    ) -> list[tuple[tuple[str, ...], str, int | None]]:
        """Stored flows this node runs: (param path, flow name or id, pinned version)."""
        return []

    @classmethod
    def tool_nodes(
        cls, params: Mapping[str, Any]
    ) -> list[tuple[tuple[str | int, ...], str, list[str] | None]]:
        """Other nodes of the flow this node runs itself (an agent's node tools): (param
        path, node id, the params it fills, None: the ones the node leaves unset)."""
        return []

    @classmethod
    def declared_actions(cls, params: Mapping[str, Any]) -> list[tuple[tuple[str, ...], str]]:
        """Actions the node can return, known from its params: (param path, action)."""
        return []

    @classmethod
    def nested_scripts(cls, params: Mapping[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
        """JavaScript function bodies inside a code param (an agent's script tools), which
        validation checks like a top-level code param: (param path, code)."""
        return []

    @classmethod
    def possible_actions(cls, params: Mapping[str, Any]) -> frozenset[str] | None:
        """Every action a node with these params can return besides ``default``; None when
        that is only known at run time."""
        return cls.actions

    # --- the part a node type writes -------------------------------------------------------

    async def work(self, call: Call) -> Any:
        """Do the node's job with ``call.params``; the return value is the node's output."""
        return call.input

    def route(self, ctx: Context, prep_res: Any, output: Any) -> str | None:
        """The action after a successful visit (None follows ``default``).

        By default the action ``work`` put on its call (``call.action``); for a batch node,
        the first item's that set one.
        """
        if isinstance(prep_res, Unbatched):
            prep_res = prep_res.value
        if isinstance(prep_res, Call):
            return prep_res.action
        return next((c.action for c in prep_res if c.action), None)

    # --- engine hooks ------------------------------------------------------------------------

    async def pause(self, seconds: float) -> None:
        # Waiting to retry is not work: the run holds no executor slot meanwhile.
        async with idle():
            await asyncio.sleep(seconds)

    def scope(self, ctx: Context) -> dict[str, Any]:
        """The names a ``${...}`` expression (or a hook) can use during this visit."""
        error = ctx.error
        return {
            "input": ctx.input,
            "shared": ctx.shared,
            "results": ctx.results,
            "params": self._raw_params,
            "execution": ctx.execution,
            "error": error.as_dict() if error is not None else None,
            "secrets": ctx.scoped(SECRETS),
        }

    async def prep(self, ctx: Context) -> Call | list[Call] | Unbatched:
        # A node starts: its run holds its executor slot again if a node timeout cut a
        # delay (or a wait to retry) short and left it without one.
        await reclaim()
        scope = self.scope(ctx)
        if self._items is not None:
            items = await self._resolve(self._items, scope)
        elif self._batch is not None and isinstance(ctx.input, list | tuple):
            # The original's batch without items: a list input is the items.
            items = list(ctx.input)
        else:
            call = await self._prepared(ctx, scope)
            if self._batch is None:
                return call
            ctx.log(
                f"batch without items and the input is a {_kind(ctx.input)}, not a list: "
                "the node runs once",
                level="warning",
            )
            return Unbatched(call)
        if not isinstance(items, list):
            raise ExpressionError(
                f"node '{self.node_id}': batch.items must be a list, got {type(items).__name__}",
                node_id=self.node_id,
            )
        calls = []
        for index, item in enumerate(items):
            item_scope = {**scope, "item": item, "index": index}
            calls.append(await self._prepared(ctx, item_scope, item, index))
        return calls

    async def exec(self, prep_res: Call) -> Any:
        if "exec" in self._hooks:
            return await self._exec_hook(prep_res)
        return await self.work(prep_res)

    async def post(self, ctx: Context, prep_res: Any, exec_res: Any) -> str | None:
        if exec_res is ctx.shared:  # a node returning the shared state: store a snapshot
            exec_res = thaw(exec_res)
        shared = ctx.shared
        shared["result"] = exec_res
        if self._result_key is not None:  # the original's shared["<kind>_result"]: a reference
            shared[self._result_key] = exec_res
        action = self.route(ctx, prep_res, exec_res)
        if "post" in self._hooks:
            scope = {**self.scope(ctx), "output": exec_res, "action": action}
            value = await self._hook("post", scope, ctx)
            if isinstance(value, str) and value:
                action = value
        return action

    # --- helpers -----------------------------------------------------------------------------

    def _given(self, ctx: Context, params: Any) -> Any:
        """``params`` with the arguments of an agent running this node as a tool over them."""
        given = ctx.scoped(TOOL_ARGUMENTS)
        if given is None or given[0] is not self or not isinstance(params, Mapping):
            return params
        return {**params, **thaw(given[1])}

    async def _resolve(self, resolver: Resolver, scope: Mapping[str, Any]) -> Any:
        if not resolver.needs_js:
            return resolver.resolve(scope)
        candidates = self._codes.get(id(resolver), ())
        if len(candidates) > 1 and self._js is not None:
            codes = v8_codes(candidates, scope)
            if len(codes) > 1:
                return await resolver.aresolve(scope, await prefetch(codes, scope, self._js))
        return await resolver.aresolve(scope, self._js)

    async def _prepared(
        self, ctx: Context, scope: dict[str, Any], item: Any = None, index: int | None = None
    ) -> Call:
        """One call of this visit (one per item in a batch): resolved params, after the prep
        hook if there is one."""
        if self._prep_plan is not None:
            joined = await self._joined_prep(ctx, scope, item, index)
            if joined is not None:
                return joined
        params = self._given(ctx, await self._resolve(self._params, scope))
        call = Call(ctx, params, ctx.input, item, index)
        if "prep" in self._hooks:
            await self._prep_hook(call, scope)
        return call

    async def _joined_prep(
        self, ctx: Context, scope: dict[str, Any], item: Any, index: int | None
    ) -> Call | None:
        """The params and the prep hook with one sandbox call; None when this visit cannot
        join them (then the caller makes the two calls).

        The params are resolved with a ``Slot`` for each expression V8 must evaluate (whole
        values only), the host evaluates those and runs the hook over the params with their
        values in place, and the values it returned take the slots' places here too: the
        params two calls give. If an expression failed, resolving with the values raises
        the error two calls raise, naming the first failing expression.
        """
        join: _PrepPlan = self._prep_plan  # type: ignore[assignment]  # set when this is called
        host: JoiningHost = self._js  # type: ignore[assignment]  # checked at compile time
        codes = v8_codes(join.expressions, scope)
        if not codes or not join.interpolated.isdisjoint(codes):
            return None
        template = self._given(ctx, await self._params.aresolve(scope, Slots(codes, host)))
        places = slot_places(template, join.places)
        if places is None:
            return None
        try:
            joined = await host.evaluate_then_run(
                codes, scope, self._hooks["prep"], template, places
            )
        except FlowrunnerError:
            # The call failed as a whole (a time or size limit, a lost worker): which part
            # failed is unknown, so the two calls are made and each reports its own failure.
            return None
        if any(isinstance(value, FlowrunnerError) for value in joined.values):
            # Raises the error two calls raise: the first failing expression, by name.
            await self._params.aresolve(scope, Prefetched(codes, joined.values, host))
        hook = joined.hook
        if hook is None:  # only when an expression failed, and resolving raised for it
            raise SandboxError(f"node '{self.node_id}': the prep hook did not run")
        if isinstance(hook, Exception):  # as ``run_script``: its console lines, then raise
            _log_lines(ctx, getattr(hook, "context", {}).get("logs"))
            raise hook
        fill_slots(template, places, joined.values)
        call = Call(ctx, template, ctx.input, item, index)
        apply_script_effects(ctx, hook)
        if isinstance(hook.value, Mapping):
            call.params = dict(hook.value)
        return call

    async def _prep_hook(self, call: Call, scope: dict[str, Any]) -> None:
        value = await self._hook("prep", {**scope, "params": call.params}, call.ctx)
        if isinstance(value, Mapping):
            call.params = dict(value)

    async def _exec_hook(self, call: Call) -> Any:
        scope = {**self.scope(call.ctx), "params": call.params}
        if call.index is not None:
            scope["item"] = call.item
            scope["index"] = call.index
        return await self._hook("exec", scope, call.ctx)

    async def _hook(self, stage: str, scope: dict[str, Any], ctx: Context) -> Any:
        """Run the ``stage`` hook; shared writes and console output flow back into the run."""
        host: ScriptHost = self._js  # type: ignore[assignment]  # checked at compile time
        return await run_script(host, self._hooks[stage], scope, ctx)


async def run_script(host: ScriptHost, body: str, scope: Mapping[str, Any], ctx: Context) -> Any:
    """Run ``body`` in the sandbox and apply its effects to the run; its return value.

    A script that throws still leaves its ``console`` lines in the run log: they are often
    what explains the throw.
    """
    try:
        result = await host.run_function(body, scope)
    except SandboxError as exc:
        _log_lines(ctx, exc.context.get("logs"))
        raise
    apply_script_effects(ctx, result)
    return result.value


def apply_script_effects(ctx: Context, result: ScriptResult) -> None:
    """Copy a script's ``shared`` back into the run and its console lines into the run log."""
    shared = result.shared
    if isinstance(shared, Mapping) and shared is not ctx.shared:
        ctx.shared.clear()
        ctx.shared.update(shared)
    _log_lines(ctx, result.logs)


def _log_lines(ctx: Context, lines: Any) -> None:
    """Console lines (``LogLine`` objects, or the dicts an error carries) into the run log."""
    for line in lines or ():
        if isinstance(line, Mapping):
            level, message = line.get("level", "info"), line.get("message", "")
        else:
            level, message = getattr(line, "level", "info"), getattr(line, "message", line)
        ctx.log(str(message), level="warning" if level == "warn" else str(level))


def _kind(value: Any) -> str:
    """A value's kind in JSON words, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "mapping" if isinstance(value, Mapping) else type(value).__name__


@dataclass(frozen=True, slots=True)
class DefinedNodeType:
    """A NodeType whose nodes are a ``DefinedNode`` subclass: how built-ins register."""

    name: str
    description: str
    node_class: type[DefinedNode]
    params_schema: Mapping[str, Any]

    @property
    def code_params(self) -> frozenset[str]:
        return self.node_class.code_params

    def build(self, spec: NodeSpec, env: BuildEnv) -> Node:
        return self.node_class(spec, env)

    def check_params(
        self, params: Mapping[str, Any], base_path: Path | None
    ) -> list[tuple[tuple[str | int, ...], str]]:
        return self.node_class.check_params(params, base_path)

    def declared_actions(self, params: Mapping[str, Any]) -> list[tuple[tuple[str, ...], str]]:
        return self.node_class.declared_actions(params)

    def nested_scripts(self, params: Mapping[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
        return self.node_class.nested_scripts(params)

    def tool_nodes(
        self, params: Mapping[str, Any]
    ) -> list[tuple[tuple[str | int, ...], str, list[str] | None]]:
        return self.node_class.tool_nodes(params)

    def possible_actions(self, params: Mapping[str, Any]) -> frozenset[str] | None:
        return self.node_class.possible_actions(params)

    def subflow_paths(self, params: Mapping[str, Any]) -> list[tuple[tuple[str, ...], str]]:
        return self.node_class.subflow_paths(params)

    def subflow_refs(
        self, params: Mapping[str, Any]
    ) -> list[tuple[tuple[str, ...], str, int | None]]:
        return self.node_class.subflow_refs(params)
