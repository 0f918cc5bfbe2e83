"""Bodies of ``/api/v1/triggers``."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from flowrunner.triggers import Trigger

HOOK_PATH = "/api/v1/hooks/{id}"


class TriggerCreate(BaseModel):
    """A flow id plus exactly one of ``webhook`` or ``schedule`` (as in a flow's
    ``triggers:`` entry)."""

    model_config = ConfigDict(extra="forbid")

    flow_id: str = Field(max_length=64)
    webhook: dict[str, Any] | None = None
    schedule: dict[str, Any] | None = None


class TriggerPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool


class TriggerOut(BaseModel):
    id: str
    flow_id: str
    name: str
    kind: Literal["webhook", "schedule"]
    source: Literal["flow", "api"]
    enabled: bool
    config: dict[str, Any]
    url: str | None = Field(description="the public hook path (webhooks only)")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, trigger: Trigger) -> TriggerOut:
        return cls(
            id=trigger.id,
            flow_id=trigger.flow_id,
            name=trigger.name,
            kind=trigger.kind,
            source=trigger.source,
            enabled=trigger.enabled,
            config=dict(trigger.config),
            url=HOOK_PATH.format(id=trigger.id) if trigger.kind == "webhook" else None,
            created_at=trigger.created_at,
            updated_at=trigger.updated_at,
        )


class TriggerPage(BaseModel):
    items: list[TriggerOut]
    next_cursor: str | None
