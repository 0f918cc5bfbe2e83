"""Durable waits: the ``wait_for`` node (a signal), and the long ``delay``.

A run waiting durably holds nothing while it waits: no executor slot, no task, no memory.
The node asks the engine to stop the run (``engine.Pause``); the server's runner records it
``waiting``, with when to wake it and what it waits for, and lets it go. When its time comes
(the waker) or its signal arrives, the run resumes from its last checkpoint, which names the
waiting node as the next one: the node runs again, finds its wait over (``Waits.woken``) and
returns. So a node only pauses where its visit can be resumed that way: a top-level node of a
top-level run on a server, not inside a sub-flow, a batch or a fan-out branch. There a
``delay`` sleeps in memory, and a ``wait_for`` fails with a message saying why.

The server provides ``Waits`` for each run (``executions.waits``) as a run-scoped value.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from flowrunner.durations import DURATION_HINT, DURATION_PATTERN, parse_duration
from flowrunner.engine import Pause, RunScoped
from flowrunner.errors import ExecutionError, WaitTimedOut
from flowrunner.nodes.base import Call, DefinedNode, DefinedNodeType

SIGNAL_NAME = "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class Waits(Protocol):
    """What a durable wait needs from the server, for one run."""

    @property
    def threshold(self) -> float:
        """Seconds: a ``delay`` at most this long sleeps in memory, a longer one is durable."""
        ...

    def now(self) -> datetime:
        """The server's clock (UTC): a wait's due time is reckoned on the clock the waker
        compares it with."""
        ...

    def woken(self, node_id: str, steps: int) -> Mapping[str, Any] | None:
        """The wait this visit of ``node_id`` (the run's ``steps``-th node visit) was woken
        from, with its ``payload`` if a signal ended it; None if it has not waited yet."""
        ...

    def pause(
        self,
        node_id: str,
        steps: int,
        *,
        wake_at: datetime | None,
        signal: str | None = None,
        schema: Mapping[str, Any] | None = None,
    ) -> Pause:
        """The ``Pause`` to raise to wait until ``wake_at`` (None: for the signal only)."""
        ...

    def resume_url(self, node_id: str, signal: str) -> str:
        """The one-time resume link of ``signal`` at ``node_id`` in this run."""
        ...


WAITS: RunScoped[Waits | None] = RunScoped("waits", None)
"""Provided by the server's runner for top-level runs; None elsewhere (``flowrunner run``)."""

NOT_DURABLE = (
    "wait_for waits durably, so it runs only on a server, as a top-level node of a top-level "
    "run: not inside a sub-flow, a batch or a fan-out branch"
)


def durable_waits(call: Call) -> Waits | None:
    """The run's ``Waits`` if this visit may pause (see the module docstring), else None."""
    waits = call.ctx.scoped(WAITS)
    if waits is None or not call.ctx.resumable or call.index is not None:
        return None
    return waits


def seconds_param(node_id: str, value: Any, name: str) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ExecutionError(
            f"node '{node_id}': {name}: {exc} ({DURATION_HINT})", node_id=node_id
        ) from exc


class WaitForNode(DefinedNode):
    """Waits for the signal ``name``: its payload is the output and the run goes on by
    ``default``; after ``timeout`` without it, the node takes its ``timeout`` edge (it fails
    if it has none)."""

    __slots__ = ()

    actions = frozenset({"timeout"})

    @classmethod
    def check_params(
        cls, params: Mapping[str, Any], base_path: Path | None
    ) -> list[tuple[tuple[str | int, ...], str]]:
        schema = params.get("schema")
        if isinstance(schema, Mapping) and "${" not in str(schema):
            import jsonschema  # by the first flow that declares a payload schema

            try:
                jsonschema.Draft202012Validator.check_schema(schema)
            except jsonschema.SchemaError as exc:
                return [(("schema",), f"not a valid JSON Schema: {exc.message}")]
        return []

    async def work(self, call: Call) -> Any:
        waits = durable_waits(call)
        if waits is None:
            raise ExecutionError(f"node '{self.node_id}': {NOT_DURABLE}", node_id=self.node_id)
        params = call.params
        name = str(params["name"])
        steps = call.ctx.steps
        wait = waits.woken(self.node_id, steps)
        if wait is None:
            timeout = params.get("timeout")
            wake_at = None
            if timeout is not None:
                seconds = seconds_param(self.node_id, timeout, "timeout")
                wake_at = waits.now() + timedelta(seconds=seconds)
            schema = params.get("schema")
            raise waits.pause(
                self.node_id,
                steps,
                wake_at=wake_at,
                signal=name,
                schema=schema if isinstance(schema, Mapping) else None,
            )
        if "payload" in wait:
            return wait["payload"]
        if "timeout" not in self._successors:
            raise WaitTimedOut(
                f"node '{self.node_id}': no signal '{name}' before the timeout, and the node "
                "has no 'timeout' edge",
                node_id=self.node_id,
            )
        call.action = "timeout"
        # The link stays usable when the flow comes back here (a reminder loop).
        return {
            "timed_out": True,
            "signal": name,
            "resume_url": waits.resume_url(self.node_id, name),
        }


WAIT_FOR = DefinedNodeType(
    "wait_for",
    "Wait durably for a signal (POST /api/v1/executions/{id}/signals/{name}, or the node's "
    "one-time resume_url): its payload is the output; after timeout, the 'timeout' edge.",
    WaitForNode,
    {
        "type": "object",
        "properties": {
            "name": {"type": "string", "pattern": SIGNAL_NAME},
            "timeout": {
                "type": ["number", "string"],
                "minimum": 0,
                "format": "duration",
                "pattern": DURATION_PATTERN,
            },
            "schema": {"type": "object"},
        },
        "required": ["name"],
        "additionalProperties": False,
    },
)
