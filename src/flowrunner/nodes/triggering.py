"""Nodes that belong to how a run was started: ``respond`` and the original's ``cron``.

``respond`` sets the HTTP answer of a synchronous webhook trigger (n8n's "Respond to
Webhook"): its output is ``{"$respond": {status, headers, body}}``, and a sync trigger whose
run ends with that output answers with it. Put it last on its branch; nodes after it see that
mapping as their input, and then the run's last output is the answer.

``cron`` is the original flowrunner's schedule node. Here a schedule is a trigger of the flow
(``triggers: [{schedule: ...}]``); a ``cron`` node is accepted as the same declaration (the
flow's saved triggers include it) and, when a run reaches it, passes its input through.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowrunner.errors import ExecutionError
from flowrunner.expressions import thaw
from flowrunner.nodes.base import Call, DefinedNode, DefinedNodeType

RESPOND_KEY = "$respond"
"""The output key that marks a run's output as an HTTP answer for a sync trigger."""


class RespondNode(DefinedNode):
    __slots__ = ()
    replayable = True

    actions = frozenset()

    async def work(self, call: Call) -> Any:
        params = call.params
        headers = params.get("headers") or {}
        if not isinstance(headers, Mapping):
            raise ExecutionError(
                f"node '{self.node_id}': headers must be a mapping, got {type(headers).__name__}",
                node_id=self.node_id,
            )
        status = params.get("status", 200)
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
            raise ExecutionError(
                f"node '{self.node_id}': status must be an HTTP status 100-599, got {status!r}",
                node_id=self.node_id,
            )
        body = thaw(params["body"]) if "body" in params else thaw(call.input)
        answer = {"status": status, "headers": {str(k): str(v) for k, v in headers.items()}}
        answer["body"] = body
        return {RESPOND_KEY: answer}


class CronNode(DefinedNode):
    __slots__ = ()
    replayable = True

    actions = frozenset()

    async def work(self, call: Call) -> Any:
        return call.input


RESPOND = DefinedNodeType(
    "respond",
    "Set the HTTP answer of a synchronous webhook trigger: status, headers, body (default: "
    "the input).",
    RespondNode,
    {
        "type": "object",
        "properties": {
            "status": {"type": ["integer", "string"]},
            "headers": {"type": ["object", "string"]},
            "body": {},
        },
        "additionalProperties": False,
    },
)
CRON = DefinedNodeType(
    "cron",
    "The original's schedule node: declares a schedule trigger of the flow (see "
    "docs/triggers.md); a run passes through it unchanged.",
    CronNode,
    {
        "type": "object",
        "properties": {
            "schedule": {"type": "string", "minLength": 1, "maxLength": 256},
            "cron": {"type": "string", "minLength": 1, "maxLength": 256},
            "expression": {"type": "string", "minLength": 1, "maxLength": 256},
            "interval": {"type": ["string", "number"]},
            "timezone": {"type": "string", "minLength": 1, "maxLength": 64},
            "input": {"type": "object"},
            "catch_up": {"enum": ["none", "latest", "all"]},
        },
        # The original's nodes carried free-form params; unknown ones are kept, not refused.
        "additionalProperties": True,
    },
)

TRIGGERING_TYPES: list[tuple[DefinedNodeType, tuple[str, ...]]] = [
    (RESPOND, ("respond_to_webhook",)),
    (CRON, ("schedule",)),
]
