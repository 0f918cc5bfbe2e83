"""``compile_flow``: a FlowDefinition → an engine graph, built once and reused by every run.

The compiled flow holds no per-run state: each ``run`` gets its own shared dict, results and
context, so one CompiledFlow serves any number of concurrent runs. ``CompiledFlow.run`` is
the one way to run it, for ``flowrunner run`` and the server's runner alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from flowrunner.definition.fanout import JOIN, SPLIT, branches_of, meeting_points
from flowrunner.definition.graph import END_TARGET
from flowrunner.definition.load import check_text, origin
from flowrunner.definition.model import FlowDefinition
from flowrunner.engine import (
    CheckpointHook,
    ErrorInfo,
    Flow,
    Node,
    Observer,
    RunResult,
    ScopedValues,
    SizeCheck,
)
from flowrunner.errors import DefinitionError, FlowrunnerError, Problem
from flowrunner.expressions import thaw
from flowrunner.nodes.base import SECRETS
from flowrunner.nodes.fanout import JoinNode, SplitNode
from flowrunner.nodes.run_resources import RUN_RESOURCES, RunResources
from flowrunner.nodes.spec import BuildEnv, Sibling
from flowrunner.plugins import NodeTypeRegistry, builtin_registry

if TYPE_CHECKING:
    from flowrunner.scripting.host import ScriptHost

HOOKS_HINT = "run it with the JavaScript sandbox (flowrunner run does), or remove the hooks"


@dataclass(frozen=True, slots=True)
class CompiledFlow:
    """A ready-to-run flow: immutable, reusable across concurrent runs."""

    definition: FlowDefinition
    engine_flow: Flow
    # Read by every run of the flow: computed once, when the flow is compiled.
    node_count: int = field(init=False)
    # The top-level nodes whose type is ``replayable`` (nodes.base.DefinedNode).
    replayable: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        nodes = self.engine_flow.nodes()
        object.__setattr__(self, "node_count", len(nodes))
        replayable = frozenset(i for i, n in nodes.items() if getattr(n, "replayable", False))
        object.__setattr__(self, "replayable", replayable)

    async def run(
        self,
        input: Any = None,
        *,
        observer: Observer | None = None,
        secrets: Mapping[str, Any] | None = None,
        scoped: ScopedValues | None = None,
        execution: Mapping[str, Any] | None = None,
        checkpoint: CheckpointHook | None = None,
        size_check: SizeCheck | None = None,
        shared: dict[str, Any] | None = None,
        start_at: str | None = None,
        results: dict[str, Any] | None = None,
        error: ErrorInfo | None = None,
        steps: int = 0,
    ) -> RunResult:
        """Run once. ``shared`` defaults to a copy of ``input`` when it is a mapping.

        ``secrets`` are the run's (``${secrets.X}``); ``scoped`` holds any other run-scoped
        values the run's nodes read (see ``engine.scoped``). ``size_check`` bounds each
        node's output. To resume from a checkpoint pass ``start_at`` (its
        ``next_node_id``), its ``shared``, ``results``, ``error`` and ``steps``, and as
        ``input`` the output the next node sees.
        """
        if shared is None:
            shared = thaw(input) if isinstance(input, Mapping) else {}
        values = dict(scoped) if scoped else {}
        if secrets is not None:
            values[SECRETS] = secrets
        # What nodes keep open across visits (MCP sessions): this run's, closed as it ends.
        resources = values[RUN_RESOURCES] = RunResources()
        try:
            return await self.engine_flow.run(
                input,
                shared=shared,
                observer=observer,
                execution=execution,
                start_at=start_at,
                results=results,
                checkpoint=checkpoint,
                error=error,
                steps=steps,
                size_check=size_check,
                scoped=values,
            )
        finally:
            await resources.aclose()


def compile_flow(
    definition: FlowDefinition,
    *,
    registry: NodeTypeRegistry | None = None,
    scripts: ScriptHost | None = None,
    base_path: Path | None = None,
    max_steps: int = 10_000,
) -> CompiledFlow:
    """Build the engine graph of ``definition``; DefinitionError if it cannot be built.

    ``scripts`` is the JavaScript host (the sandbox) used for non-path ``${...}``
    expressions, scripts and hooks; ``base_path`` is where relative sub-flow paths start.
    """
    return _Compiler(registry or builtin_registry(), scripts, max_steps).compile(
        definition, base_path, origin(definition.source, base_path)
    )


class _Compiler:
    def __init__(
        self, registry: NodeTypeRegistry, scripts: ScriptHost | None, max_steps: int
    ) -> None:
        self.registry = registry
        self.scripts = scripts
        self.max_steps = max_steps

    def compile(
        self, definition: FlowDefinition, base_path: Path | None, stack: tuple[Path, ...]
    ) -> CompiledFlow:
        self._check_hooks(definition)
        building: list[str] = []  # node tools being built: an agent's tool that is an agent

        def sibling(node_id: str) -> Sibling:
            return self._sibling(definition, env, node_id, building)

        env = BuildEnv(
            scripts=self.scripts,
            base_path=base_path,
            load_subflow=lambda path: self._subflow(definition, path, base_path, stack),
            sibling=sibling,
        )
        nodes: dict[str, Node] = {}
        for node_id, spec in definition.nodes.items():
            node_type = self.registry.find(spec.type)
            if node_type is None:
                self._fail(
                    definition, f"nodes.{node_id}.type", self.registry.unknown_message(spec.type)
                )
            try:
                nodes[node_id] = node_type.build(spec, env)
            except DefinitionError:
                raise
            except (FlowrunnerError, ValueError, TypeError) as exc:
                self._fail(definition, f"nodes.{node_id}", f"cannot build node: {exc}")
        splits = {i: n for i, n in nodes.items() if isinstance(n, SplitNode)}
        for node_id, spec in definition.nodes.items():
            for action, target in spec.next.items():
                if node_id in splits and action != "error":
                    continue  # a branch, wired below
                if target == END_TARGET and target not in nodes:
                    nodes[node_id].end(action)
                else:
                    nodes[node_id].connect(nodes[target], action)
        for node_id, split in splits.items():
            self._wire_split(definition, node_id, split, nodes)
        flow = Flow(nodes[definition.start], node_id=definition.name, max_steps=self.max_steps)
        return CompiledFlow(definition, flow)

    def _wire_split(
        self, definition: FlowDefinition, node_id: str, split: SplitNode, nodes: dict[str, Node]
    ) -> None:
        """A split's branches, and the join where they meet (validation checked there is at
        most one), which the run goes on to after the split."""

        def next_of(i: str) -> Mapping[str, str]:
            return definition.nodes[i].next if i in definition.nodes else {}

        def type_of(i: str) -> str | None:
            node = nodes.get(i)
            if node is None:
                return None
            return (
                SPLIT if isinstance(node, SplitNode) else JOIN if isinstance(node, JoinNode) else ""
            )

        branches = branches_of(next_of, node_id, lambda i: i in nodes)
        joins = sorted(meeting_points(node_id, next_of, type_of))
        if len(joins) > 1:
            self._fail(definition, f"nodes.{node_id}.next", f"branches meet at {joins}")
        join = nodes[joins[0]] if joins else None
        split.wire({action: nodes[target] for action, target in branches.items()}, join)
        if join is not None:
            split.connect(join)

    def _sibling(
        self, definition: FlowDefinition, env: BuildEnv, node_id: str, building: list[str]
    ) -> Sibling:
        """A fresh, unconnected build of node ``node_id`` (validation checked it exists and
        that node tools do not go round in a circle; the guard is for flows built without)."""
        spec = definition.nodes.get(node_id)
        node_type = self.registry.find(spec.type) if spec is not None else None
        if spec is None or node_type is None:
            self._fail(definition, "nodes", f"tool node '{node_id}' does not exist")
        if node_id in building:
            chain = " → ".join([*building, node_id])
            self._fail(definition, f"nodes.{node_id}", f"node tools go round in a circle: {chain}")
        building.append(node_id)
        try:
            node = node_type.build(spec, env)
        finally:
            building.pop()
        return Sibling(
            spec,
            node_type.params_schema,
            node_type.description,
            node_type.code_params,
            node,
        )

    def _check_hooks(self, definition: FlowDefinition) -> None:
        if self.scripts is not None:
            return
        problems = [
            _problem(
                definition,
                f"nodes.{node_id}.hooks",
                "hooks need the JavaScript sandbox, and this flow is compiled without one",
                HOOKS_HINT,
            )
            for node_id, spec in definition.nodes.items()
            if spec.hooks
        ]
        if problems:
            raise DefinitionError(problems, source=definition.source)

    def _subflow(
        self, parent: FlowDefinition, path: str, base_path: Path | None, stack: tuple[Path, ...]
    ) -> Flow:
        where = next(
            (
                f"nodes.{i}.params.path"
                for i, s in parent.nodes.items()
                if s.params.get("path") == path
            ),
            "nodes",
        )
        if base_path is None:  # never the working directory: see SubflowNode.check_params
            self._fail(
                parent,
                where,
                "sub-flow paths are relative to the flow's own file; compile with base_path",
            )
        full = (base_path / path).resolve()
        if full in stack:
            chain = " → ".join(p.name for p in (*stack, full))
            self._fail(
                parent,
                where,
                f"sub-flow recursion: {chain}",
                "a flow cannot include itself, directly or through other flows",
            )
        try:
            text = full.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            self._fail(parent, where, f"cannot read sub-flow '{path}': {exc}")
        try:
            problems, sub = check_text(
                text, str(full), self.registry, full.parent, self.scripts, (*stack, full)
            )
            if sub is None:
                raise DefinitionError(problems, source=str(full))
            return self.compile(sub, full.parent, (*stack, full)).engine_flow
        except DefinitionError as exc:
            first = exc.errors[0] if exc.errors else None
            head = _problem(
                parent,
                where,
                f"sub-flow '{path}' is invalid" + (f": {first.message}" if first else ""),
            )
            raise DefinitionError([head, *exc.problems], source=parent.source) from exc

    def _fail(
        self, definition: FlowDefinition, path: str, message: str, hint: str | None = None
    ) -> NoReturn:
        raise DefinitionError([_problem(definition, path, message, hint)], source=definition.source)


def _problem(
    definition: FlowDefinition, path: str, message: str, hint: str | None = None
) -> Problem:
    line, column = definition.position(path)
    return Problem(path, message, line, column, "error", hint, source=definition.source)
