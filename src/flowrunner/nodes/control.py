"""Flow-control built-ins: ``delay`` (``wait``), ``log``, ``set``, ``switch``, ``fail``, ``flow``,
and ``wait_for`` (from ``nodes.wait``, which also makes a long ``delay`` durable).

``delay``, ``log`` and ``switch`` pass their input through as output, so putting one between
two nodes does not change what the second one sees.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from flowrunner.durations import DURATION_PATTERN
from flowrunner.engine import Flow, NodeEvent, RunScoped
from flowrunner.errors import ExecutionError, FlowFailed
from flowrunner.expressions import thaw, to_text
from flowrunner.fairness import idle
from flowrunner.nodes.base import Call, DefinedNode, DefinedNodeType
from flowrunner.nodes.spec import BuildEnv
from flowrunner.nodes.wait import WAIT_FOR, durable_waits, seconds_param

_DURATION = {
    "type": ["number", "string"],
    "minimum": 0,
    "format": "duration",
    "pattern": DURATION_PATTERN,
}
_LEVELS = ["debug", "info", "warning", "warn", "error"]


class DelayNode(DefinedNode):
    __slots__ = ()

    actions = frozenset()

    async def work(self, call: Call) -> Any:
        waits = durable_waits(call)
        if waits is not None and waits.woken(self.node_id, call.ctx.steps) is not None:
            return call.input  # woken from this very wait: it is over
        seconds, wake_at = self._wait(call.params, waits.now() if waits else datetime.now(UTC))
        if waits is not None and seconds > waits.threshold:
            # Long: the run waits durably (nodes.wait), holding nothing until then.
            raise waits.pause(self.node_id, call.ctx.steps, wake_at=wake_at)
        if seconds > 0:
            # A sleeping run holds no executor slot: an hour's wait must not keep other
            # runs (another account's, above all) queued.
            async with idle():
                await asyncio.sleep(seconds)
        return call.input

    def _wait(self, params: Mapping[str, Any], now: datetime) -> tuple[float, datetime]:
        """How long to wait from ``now``, and until when."""
        if params.get("duration") is not None:
            seconds = seconds_param(self.node_id, params["duration"], "duration")
            return seconds, now + timedelta(seconds=seconds)
        until = params.get("until")
        try:
            when = datetime.fromisoformat(str(until))
        except ValueError as exc:
            raise ExecutionError(
                f"node '{self.node_id}': until {until!r} is not an ISO 8601 date-time",
                node_id=self.node_id,
            ) from exc
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)  # a flow file has no local time zone to assume
        return (when - now).total_seconds(), when


class LogNode(DefinedNode):
    __slots__ = ()
    replayable = True

    actions = frozenset()

    async def work(self, call: Call) -> Any:
        params = call.params
        level = str(params.get("level") or "info")
        call.ctx.log(to_text(params.get("message")), level="warning" if level == "warn" else level)
        return call.input


class SetNode(DefinedNode):
    __slots__ = ()
    replayable = True

    actions = frozenset()

    async def work(self, call: Call) -> Any:
        values = call.params.get("values") or {}
        if not isinstance(values, Mapping):
            raise ExecutionError(
                f"node '{self.node_id}': values must be a mapping, got {type(values).__name__}",
                node_id=self.node_id,
            )
        # A copy: "${shared}" resolves to the live shared state itself, and storing that
        # inside shared would make it contain itself (no longer JSON).
        values = thaw(values)
        call.ctx.shared.update(values)
        return dict(values)


class SwitchNode(DefinedNode):
    __slots__ = ()
    replayable = True

    @classmethod
    def declared_actions(cls, params: Mapping[str, Any]) -> list[tuple[tuple[str, ...], str]]:
        cases = params.get("cases")
        found: list[tuple[tuple[str, ...], Any]] = (
            [(("cases", str(k)), v) for k, v in cases.items()] if isinstance(cases, Mapping) else []
        )
        found.append((("default",), params.get("default")))
        return [(path, a) for path, a in found if isinstance(a, str) and a and "${" not in a]

    @classmethod
    def possible_actions(cls, params: Mapping[str, Any]) -> frozenset[str] | None:
        found = cls.declared_actions(params)
        cases = params.get("cases")
        written = [*(cases.values() if isinstance(cases, Mapping) else ()), params.get("default")]
        if len(found) < len([a for a in written if a is not None]):
            return None  # an action is an expression: known only at run time
        return frozenset(action for _, action in found)

    async def work(self, call: Call) -> Any:
        params = call.params
        # Case keys are YAML mapping keys, so text: the value is compared as text too
        # (1 matches "1", true matches "true").
        action = (params.get("cases") or {}).get(to_text(params.get("value")))
        if action is None:
            action = params.get("default")
        call.action = str(action) if action is not None else None
        return call.input


class FailNode(DefinedNode):
    __slots__ = ()

    actions = frozenset()

    async def work(self, call: Call) -> Any:
        message = to_text(call.params.get("message")) or f"flow failed at node '{self.node_id}'"
        raise FlowFailed(message, node_id=self.node_id)


class StoredFlows(Protocol):
    """Runs a flow stored in the run's account as a child execution (the server provides it:
    ``flowrunner.executions.subflows``); returns the child's output and ending action."""

    async def run_stored(
        self, call: Call, flow: str, version: int | None, run_input: Any
    ) -> tuple[Any, str | None]: ...


STORED_FLOWS: RunScoped[StoredFlows | None] = RunScoped("stored_flows", None)
"""A run-scoped value (``ctx.scoped(STORED_FLOWS)``): provided by the server's runner for
each run; None outside a server (``flowrunner run``)."""

NO_SERVER = (
    "a sub-flow named with 'flow:' is a flow stored on a server, and this run has no server: "
    "use 'path:' (a flow file relative to this one) to run it with flowrunner run"
)

NO_BASE = (
    "sub-flow paths are relative to the flow's own file, and this flow was loaded without "
    "one (base_path)"
)


class SubflowNode(DefinedNode):
    """Runs another flow: a file (``path``) with the same ``shared``, or a flow stored in the
    account (``flow``, on a server) as a child execution. Its output and action are the node's.
    """

    __slots__ = ("flow",)

    def setup(self, env: BuildEnv) -> None:
        self.flow: Flow | None = None
        if "path" not in self.spec.params:
            return  # a stored flow: resolved and pinned by the server when the run starts
        if env.load_subflow is None:
            raise ExecutionError("flow nodes need a sub-flow loader (compile with compile_flow)")
        self.flow = env.load_subflow(str(self.spec.params["path"]))

    @classmethod
    def subflow_refs(
        cls, params: Mapping[str, Any]
    ) -> list[tuple[tuple[str, ...], str, int | None]]:
        """Stored flows this node names: (param path, name or id, pinned version or None)."""
        ref, version = params.get("flow"), params.get("version")
        if not isinstance(ref, str) or not ref or "${" in ref:
            return []
        return [(("flow",), ref, version if isinstance(version, int) else None)]

    @classmethod
    def subflow_paths(cls, params: Mapping[str, Any]) -> list[tuple[tuple[str, ...], str]]:
        path = params.get("path")
        return [(("path",), path)] if isinstance(path, str) and "${" not in path else []

    @classmethod
    def check_params(
        cls, params: Mapping[str, Any], base_path: Path | None
    ) -> list[tuple[tuple[str | int, ...], str]]:
        ref = params.get("flow")
        if "path" in params and "flow" in params:
            return [
                (
                    ("flow",),
                    "give either path (a flow file) or flow (a flow stored on the server), "
                    "not both",
                )
            ]
        if isinstance(ref, str) and "${" in ref:
            return [
                (
                    ("flow",),
                    "flow must be a flow's name or id, not an expression: a stored sub-flow "
                    "is checked when its parent is saved",
                )
            ]
        if "version" in params and "flow" not in params:
            return [(("version",), "version applies to a stored flow (flow:), not to a path")]
        path = params.get("path")
        if not isinstance(path, str):
            return []
        if "${" in path:
            return [
                (
                    ("path",),
                    "path must be a file name, not an expression: sub-flows are "
                    "loaded when the flow is compiled",
                )
            ]
        if base_path is None:
            # Never resolve against the process's working directory: a flow sent to a server
            # must not be able to probe its file system.
            return [(("path",), NO_BASE)]
        full = base_path / path
        if not full.is_file():
            return [(("path",), f"sub-flow file '{path}' not found (looked at {full})")]
        return []

    async def work(self, call: Call) -> Any:
        ctx = call.ctx
        # A copy: `input: "${shared}"` would otherwise hand the sub-flow the live shared state
        # as data, and a pass-through node's output would then store shared inside itself.
        run_input = thaw(call.params.get("input", call.input))
        if self.flow is None:
            stored = ctx.scoped(STORED_FLOWS)
            if stored is None:
                raise ExecutionError(f"node '{self.node_id}': {NO_SERVER}", node_id=self.node_id)
            version = call.params.get("version")
            output, call.action = await stored.run_stored(
                call,
                str(call.params["flow"]),
                version if isinstance(version, int) else None,
                run_input,
            )
            return output
        prefix = (*ctx.flow_path, self.node_id)

        def forward(event: NodeEvent) -> None:
            event.flow_path = (*prefix, *event.flow_path)
            ctx.emit(event)

        result = await self.flow.run(
            run_input,
            shared=ctx.shared,
            observer=forward,
            execution=ctx.execution,
            scoped=ctx.scoped_values,
        )
        call.action = result.action
        return result.output


def _schema(
    properties: dict[str, Any], required: list[str] | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required or [],
        "additionalProperties": False,
        **extra,
    }


DELAY = DefinedNodeType(
    "delay",
    "Wait for a duration, or until an ISO 8601 date-time; the input passes through.",
    DelayNode,
    _schema(
        {
            "duration": _DURATION,
            "until": {"type": "string", "minLength": 1},
            # The original's wait nodes name their kind; the output is also shared.<type>_result.
            "type": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
        },
        anyOf=[{"required": ["duration"]}, {"required": ["until"]}],
    ),
)
LOG = DefinedNodeType(
    "log",
    "Write a message to the run's log; the input passes through.",
    LogNode,
    _schema({"message": {}, "level": {"enum": _LEVELS}}, ["message"]),
)
SET = DefinedNodeType(
    "set",
    "Merge values into shared; the output is the values.",
    SetNode,
    _schema({"values": {"type": "object"}}, ["values"]),
)
SWITCH = DefinedNodeType(
    "switch",
    "Pick the next node: the action of the case matching value (as text), else default.",
    SwitchNode,
    _schema(
        {
            "value": {},
            "cases": {"type": "object", "additionalProperties": {"type": "string", "minLength": 1}},
            "default": {"type": "string", "minLength": 1},
        },
        ["value", "cases"],
    ),
)
FAIL = DefinedNodeType(
    "fail",
    "End the run as failed with a message.",
    FailNode,
    _schema({"message": {"type": "string"}}),
)
FLOW = DefinedNodeType(
    "flow",
    "Run another flow as a sub-flow: a file (path, relative to this one) sharing shared, or "
    "a flow stored in the same account (flow: its name or id, optional version) as a child "
    "execution.",
    SubflowNode,
    _schema(
        {
            "path": {"type": "string", "minLength": 1},
            "flow": {"type": "string", "minLength": 1},
            "version": {"type": "integer", "minimum": 1},
            "input": {},
        },
        anyOf=[{"required": ["path"]}, {"required": ["flow"]}],
    ),
)

# (type, aliases) of this module's built-ins.
CONTROL_TYPES: list[tuple[DefinedNodeType, tuple[str, ...]]] = [
    (DELAY, ("wait",)),
    (LOG, ()),
    (SET, ()),
    (SWITCH, ()),
    (FAIL, ()),
    (FLOW, ()),
    (WAIT_FOR, ()),
]
