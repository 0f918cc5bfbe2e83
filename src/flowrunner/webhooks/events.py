"""Webhook event types and payloads: ``{type, timestamp, data}`` with a run's summary.

Outputs and errors are masked by the runner before they get here; an output larger than
``MAX_OUTPUT_BYTES`` of JSON is replaced by a marker (``{"$truncated": true, "bytes": n}``)
so a delivery stays small whatever a flow returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flowrunner import jsontext
from flowrunner.storage import Execution, Flow
from flowrunner.storage.records import JSONValue

EXECUTION_EVENTS = (
    "execution.started",
    "execution.completed",
    "execution.failed",
    "execution.canceled",
)
EVENT_TYPES = (*EXECUTION_EVENTS, "node.completed", "node.failed", "flow.created",
               "flow.updated", "flow.deleted", "webhook.test", "webhook.disabled")  # fmt: skip
BY_STATUS = {
    "running": "execution.started",
    "completed": "execution.completed",
    "failed": "execution.failed",
    "canceled": "execution.canceled",
}
NODE_STATES = {"finished": "node.completed", "failed": "node.failed"}
MAX_OUTPUT_BYTES = 64 << 10


def truncated(value: JSONValue, limit: int = MAX_OUTPUT_BYTES) -> JSONValue:
    if value is None:
        return None
    size = len(jsontext.dumps(value).encode())
    return value if size <= limit else {"$truncated": True, "bytes": size}


def envelope(event_type: str, timestamp: datetime, data: dict[str, Any]) -> dict[str, JSONValue]:
    return {"type": event_type, "timestamp": timestamp.isoformat(), "data": data}


def execution_event(
    event_type: str,
    execution: Execution,
    now: datetime,
    *,
    flow_name: str | None = None,
    output: JSONValue = None,
    error: JSONValue = None,
) -> dict[str, JSONValue]:
    data: dict[str, Any] = {
        "execution_id": execution.id,
        "flow_id": execution.flow_id,
        "flow_name": flow_name,
        "flow_version": execution.flow_version,
        "status": event_type.removeprefix("execution."),
        "started_at": execution.started_at.isoformat() if execution.started_at else None,
        "finished_at": now.isoformat() if event_type != "execution.started" else None,
    }
    if event_type == "execution.completed":
        data["output"] = truncated(output)
    if error is not None:
        data["error"] = truncated(error)
    return envelope(event_type, now, data)


def node_event(
    event_type: str,
    execution: Execution,
    node: Mapping[str, Any],
    when: datetime,
    *,
    flow_name: str | None = None,
) -> dict[str, JSONValue]:
    """A top-level node's ``node.completed`` / ``node.failed`` from its stored run event
    (already masked and bounded by the recorder)."""
    data: dict[str, Any] = {
        "execution_id": execution.id,
        "flow_id": execution.flow_id,
        "flow_name": flow_name,
        "flow_version": execution.flow_version,
        "node_id": node.get("node_id"),
        "attempt": node.get("attempt"),
        "duration_ms": node.get("duration_ms"),
    }
    if event_type == "node.completed":
        data["output"] = truncated(node.get("output"))
        data["action"] = node.get("action")
    else:
        data["error"] = truncated(node.get("error"))
    return envelope(event_type, when, data)


def flow_event(
    event_type: str, flow: Flow, version: int, now: datetime, *, actor_id: str | None
) -> dict[str, JSONValue]:
    """``flow.created`` / ``flow.updated`` / ``flow.deleted``: which flow, at which version,
    changed by whom (the YAML itself is not sent: it may be large, fetch it by id)."""
    data: dict[str, Any] = {
        "flow_id": flow.id,
        "flow_name": flow.name,
        "version": version,
        "tags": list(flow.tags),
        "actor_id": actor_id,
    }
    return envelope(event_type, now, data)
