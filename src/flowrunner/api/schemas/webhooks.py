"""Models of outbound webhook endpoints, their deliveries and attempts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from flowrunner.api.schemas import RequestModel, ResponseModel
from flowrunner.storage import WebhookDelivery
from flowrunner.webhooks.service import DeliveryView, EndpointView

Events = list[str]
_EVENTS = "event types (empty: every event): execution.started, execution.completed, ..."


class EndpointCreate(RequestModel):
    url: str = Field(min_length=1, max_length=2048)
    events: Events = Field(default_factory=list, max_length=20, description=_EVENTS)
    description: str = Field(default="", max_length=500)
    secret: str | None = Field(
        default=None, max_length=512, description="whsec_<base64>; default: a new one"
    )
    headers: dict[str, str] = Field(default_factory=dict, description="sent with every event")
    flow_ids: list[str] = Field(
        default_factory=list, max_length=100, description="only these flows' events"
    )


class EndpointUpdate(RequestModel):
    url: str | None = Field(default=None, min_length=1, max_length=2048)
    events: Events | None = Field(default=None, max_length=20)
    enabled: bool | None = None
    description: str | None = Field(default=None, max_length=500)
    headers: dict[str, str] | None = None
    flow_ids: list[str] | None = Field(default=None, max_length=100)


class RotateSecret(RequestModel):
    secret: str | None = Field(default=None, max_length=512, description="default: a new one")


class EndpointOut(ResponseModel):
    id: str
    url: str
    events: Events
    description: str
    enabled: bool
    source: str = Field(description="api, or flow (from a flow's metadata.webhooks)")
    flow_ids: list[str]
    headers: dict[str, str] = Field(description="names only; values masked")
    secret_rotating_until: datetime | None
    created_at: datetime
    updated_at: datetime
    secret: str | None = Field(
        default=None, description="only when created or rotated: keep it, it is not shown again"
    )

    @classmethod
    def of(cls, view: EndpointView) -> EndpointOut:
        return cls.model_validate(view.as_json())


class EndpointPage(ResponseModel):
    items: list[EndpointOut]
    next_cursor: str | None


class DeliveryOut(ResponseModel):
    id: str
    endpoint_id: str
    event_type: str
    status: str = Field(description="pending, delivered, or dead (dead-lettered)")
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    delivered_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    execution_id: str | None = Field(
        default=None,
        description="the run whose state change caused it (deleted with it by retention);"
        " null for events of no run: flow changes, test sends, redeliveries, notices",
    )
    payload: dict[str, Any] | None = None

    @classmethod
    def of(cls, d: WebhookDelivery, *, payload: bool = False) -> DeliveryOut:
        return cls(
            id=d.id,
            endpoint_id=d.endpoint_id,
            event_type=d.event_type,
            status=d.status,
            attempts=d.attempts,
            next_attempt_at=d.next_attempt_at,
            created_at=d.created_at,
            delivered_at=d.delivered_at,
            last_status_code=d.last_status_code,
            last_error=d.last_error,
            execution_id=d.execution_id,
            payload=dict(d.payload) if payload else None,
        )


class AttemptOut(ResponseModel):
    number: int
    at: datetime
    status_code: int | None
    latency_ms: float
    response: str = Field(description="the first bytes of the receiver's answer")
    error: str | None
    next_attempt_at: datetime | None


class DeliveryDetail(DeliveryOut):
    attempt_history: list[AttemptOut]

    @classmethod
    def of_view(cls, view: DeliveryView) -> DeliveryDetail:
        base = DeliveryOut.of(view.delivery, payload=True)
        return cls(
            **base.model_dump(),
            attempt_history=[AttemptOut.model_validate(a) for a in view.attempts],
        )


class DeliveryPage(ResponseModel):
    items: list[DeliveryOut]
    next_cursor: str | None


class RedeliverFailed(RequestModel):
    # ISO 8601 text (JSON has no datetime): parsed, despite the strict request models.
    since: datetime = Field(
        strict=False, description="dead-lettered deliveries created at or after this"
    )


class Redelivered(ResponseModel):
    count: int
    items: list[DeliveryOut]
