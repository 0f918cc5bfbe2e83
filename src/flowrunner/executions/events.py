"""Execution event types and how an engine ``NodeEvent`` becomes a stored event.

Stored event types are the WebSocket message types, so a stream is the history verbatim:

- ``status``   the run changed status (``data.status``; a resume says ``resumed: true``)
- ``node``     a node started, retried, finished, failed or was canceled (``data.state``)
- ``log``      a node logged a line
- ``complete`` the run completed (``data.output``)
- ``error``    the run failed (``data.error`` with the failing ``node_id``)
- ``stream``   live only, never stored: text a node is generating (``data.node_id``,
  ``data.delta``, ``data.chunk``), throttled; its ``seq`` is the last stored event's, so a
  follower's position is unchanged by it. The node's ``finished`` event has the whole text.

A run's last event always carries a terminal ``data.status``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from flowrunner.engine import NodeEvent
from flowrunner.executions.payloads import bounded, error_details
from flowrunner.executions.states import is_terminal
from flowrunner.secrets import Masker
from flowrunner.storage import ExecutionEvent, NewEvent
from flowrunner.storage.records import utcnow

STATUS = "status"
NODE = "node"
LOG = "log"
COMPLETE = "complete"
ERROR = "error"
STREAM = "stream"
TYPES = (STATUS, NODE, LOG, COMPLETE, ERROR)  # the stored ones


def is_final(event: ExecutionEvent) -> bool:
    """True for the event that ends a run's stream."""
    status = event.data.get("status")
    return isinstance(status, str) and is_terminal(status)


# Events carry the time they happened: they are stored in batches, after the fact (a node's
# "started" with its "finished"), so the store's clock would give a whole batch one time.


def status_event(status: str, **data: Any) -> NewEvent:
    return NewEvent(STATUS, {"status": status, **data}, utcnow())


def complete_event(output: Any) -> NewEvent:
    return NewEvent(COMPLETE, {"status": "completed", "output": output}, utcnow())


def error_event(error: Mapping[str, Any]) -> NewEvent:
    return NewEvent(ERROR, {"status": "failed", "error": dict(error)}, utcnow())


def node_event(event: NodeEvent, masker: Masker, limit: int) -> NewEvent:
    """The stored form of one engine event (payloads bounded, secrets masked)."""
    if event.kind == "log":
        data: dict[str, Any] = {
            "node_id": event.node_id,
            "level": event.level or "info",
            "message": masker.mask_text(event.message or ""),
        }
        if event.fields:
            data["fields"] = bounded(dict(event.fields), masker, limit)
        return NewEvent(LOG, _path(data, event), _when(event))
    data = {"node_id": event.node_id, "state": event.kind, "attempt": event.attempt}
    if event.duration is not None:
        data["duration_ms"] = round(event.duration * 1000, 3)
    if event.kind == "finished":
        data["output"] = bounded(event.output, masker, limit)
        # An action can be computed (a condition or hook returning text, a switch case from
        # an expression), so it can hold a secret like any output.
        data["action"] = masker.mask_text(event.action) if event.action else event.action
        data["next_node"] = event.next_node_id
    elif event.kind == "failed" and event.error is not None:
        data["error"] = error_details(event.error, masker, node_id=event.node_id)
        data["next_node"] = event.next_node_id
    elif event.kind == "retrying" and event.item_index is not None:
        data["item_index"] = event.item_index
    return NewEvent(NODE, _path(data, event), _when(event))


def _when(event: NodeEvent) -> datetime:
    return datetime.fromtimestamp(event.time, UTC)


def _path(data: dict[str, Any], event: NodeEvent) -> dict[str, Any]:
    if event.flow_path:
        data["flow_path"] = list(event.flow_path)
    return data


def as_message(event: ExecutionEvent, flow_id: str | None = None) -> dict[str, Any]:
    """The JSON shape of an event on the wire (WebSocket, SSE and the logs endpoint)."""
    message: dict[str, Any] = {
        "type": event.type,
        "seq": event.seq,
        "execution_id": event.execution_id,
        "time": event.created_at.isoformat(),
        "data": dict(event.data) if isinstance(event.data, Mapping) else event.data,
    }
    if flow_id is not None:
        message["flow_id"] = flow_id
    return message
