"""Models of runs: starting one, reading and listing them, their log lines, retrying.

The request models forbid unknown keys but keep pydantic's lax types (``"version": "2"`` is
accepted), as they always have: clients depend on it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from flowrunner.storage import Execution
from flowrunner.storage.records import ExecutionStatus


class RunRequest(BaseModel):
    # A misspelt key ({"inputs": ...}) would otherwise start a run with an empty input.
    model_config = ConfigDict(extra="forbid")

    input: Any = Field(default=None, description="the run input: a JSON object")
    shared: Any = Field(default=None, description="accepted as an alias of input")
    version: int | None = Field(default=None, ge=1, description="default: the current one")


class RunAccepted(BaseModel):
    execution_id: str
    status: ExecutionStatus


class ExecutionOut(BaseModel):
    id: str
    flow_id: str
    flow_version: int
    status: ExecutionStatus
    progress: float = Field(
        description="the share of the flow's nodes finished; 1.0 once completed, and a failed"
        " or canceled run keeps what it reached"
    )
    current_node: str | None = Field(description="the top-level node running now, or next")
    input: Any
    output: Any
    error: dict[str, Any] | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: float | None
    last_event_seq: int
    parent_id: str | None = Field(
        default=None, description="the run whose flow node started this one (a sub-flow)"
    )
    usage: dict[str, Any] | None = Field(
        default=None,
        description="model-call token usage (llm and agent nodes) once the run ended: calls, "
        "prompt_tokens, completion_tokens, total_tokens, and the same per node under nodes; "
        "null when it made no call (a running run's: GET .../usage)",
    )
    wake_at: datetime | None = Field(
        default=None,
        description="while waiting: when its timer (a delay, a wait_for timeout) wakes it",
    )
    waiting_for: dict[str, Any] | None = Field(
        default=None,
        description="while waiting: the node, and the signal it waits for (if any)",
    )

    @classmethod
    def of(cls, e: Execution) -> ExecutionOut:
        duration = None
        if e.started_at is not None and e.finished_at is not None:
            duration = round((e.finished_at - e.started_at).total_seconds() * 1000, 3)
        return cls(
            id=e.id,
            flow_id=e.flow_id,
            flow_version=e.flow_version,
            status=e.status,
            progress=e.progress,
            current_node=e.current_node,
            input=e.input,
            output=e.output,
            error=dict(e.error) if e.error is not None else None,
            created_at=e.created_at,
            started_at=e.started_at,
            finished_at=e.finished_at,
            duration_ms=duration,
            last_event_seq=e.last_event_seq,
            parent_id=e.parent_id,
            usage=dict(e.usage) if e.usage is not None else None,
            wake_at=e.wake_at if e.status == "waiting" else None,
            waiting_for=_waiting_for(e),
        )


def _waiting_for(e: Execution) -> dict[str, Any] | None:
    if e.status != "waiting" or e.wait is None:
        return None
    return {k: e.wait.get(k) for k in ("node_id", "kind", "signal") if e.wait.get(k) is not None}


class ExecutionPage(BaseModel):
    items: list[ExecutionOut]
    next_cursor: str | None

    @classmethod
    def of(cls, items: list[Execution], next_cursor: str | None) -> ExecutionPage:
        return cls(items=[ExecutionOut.of(e) for e in items], next_cursor=next_cursor)


class EventOut(BaseModel):
    type: str
    seq: int
    execution_id: str
    time: str
    data: dict[str, Any]


class LogPage(BaseModel):
    items: list[EventOut]
    next_cursor: str | None = Field(description="pass as after_seq for the next page")


class RetryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resume: bool = Field(default=False, description="start at the node that failed")
