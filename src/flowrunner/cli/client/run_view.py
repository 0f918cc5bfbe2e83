"""A server run's events drawn with the local ``run``'s view (cli/progress.py).

Each stored event becomes the engine ``NodeEvent`` it was recorded from, so a followed run
looks exactly like a local one: a spinner on the running node, one line per finished,
retried or failed node, the log lines. The server masked secret values already.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

from flowrunner.cli.progress import ProgressView

if TYPE_CHECKING:
    from flowrunner.engine import NodeEvent

_NODE_STATES = ("started", "retrying", "finished", "failed", "canceled")


class RemoteError(Exception):
    """A node's error as the server recorded it: only its message travels."""


def node_event(message: dict[str, Any]) -> NodeEvent | None:
    """The engine event a ``node`` or ``log`` message stands for; None for the others."""
    from flowrunner.engine import NodeEvent

    kind = message.get("type")
    data = message.get("data") or {}
    node_id = str(data.get("node_id") or "")
    path = tuple(str(p) for p in data.get("flow_path") or ())
    when = _timestamp(message.get("time"))
    if kind == "log":
        return NodeEvent(
            kind="log",
            node_id=node_id,
            time=when,
            message=str(data.get("message") or ""),
            level=str(data.get("level") or "info"),
            fields=data.get("fields"),
            flow_path=path,
        )
    state = data.get("state")
    if kind != "node" or state not in _NODE_STATES:
        return None
    error = data.get("error")
    duration = data.get("duration_ms")
    return NodeEvent(
        kind=state,
        node_id=node_id,
        time=when,
        attempt=int(data.get("attempt") or 1),
        duration=float(duration) / 1000 if duration is not None else None,
        output=data.get("output"),
        action=data.get("action"),
        next_node_id=data.get("next_node"),
        error=RemoteError(str(error.get("message") or error)) if isinstance(error, dict) else None,
        item_index=data.get("item_index"),
        flow_path=path,
    )


def _timestamp(text: Any) -> float:
    try:
        return datetime.fromisoformat(str(text)).timestamp()
    except ValueError:
        return 0.0


class RemoteRunView:
    """Feeds a run's messages to a ProgressView on ``console`` (stderr)."""

    def __init__(self, console: Console) -> None:
        self.progress = ProgressView(console)
        self._console = console

    def __enter__(self) -> RemoteRunView:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(None, None, None)

    def __call__(self, message: dict[str, Any]) -> None:
        event = node_event(message)
        if event is not None:
            self.progress(event)
        elif message.get("type") == "status":
            data = message.get("data") or {}
            if data.get("status") == "waiting":
                self._console.print(f"[cyan]⏸[/] {escape(waiting_line(data))}", highlight=False)


def waiting_line(data: dict[str, Any]) -> str:
    """What a ``waiting`` status event says: where, for what, until when."""
    node = str(data.get("node_id") or "?")
    what = f"signal '{data['signal']}'" if data.get("signal") else "its timer"
    until = f" (until {data['wake_at']})" if data.get("wake_at") else ""
    if data.get("signal") and data.get("wake_at"):
        until = f" (timeout at {data['wake_at']})"
    return f"{node} waiting for {what}{until}"
