"""``Trigger``: one stored trigger (a webhook URL or a schedule bound to a flow).

A trigger declared in a flow's ``triggers:`` (or by a ``cron`` node) has ``source="flow"`` and
is rewritten each time a version of the flow is saved; one made over the API has
``source="api"`` and lives until deleted. ``config`` holds the kind's settings as JSON (the
fields of ``WebhookSpec`` / ``ScheduleSpec``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal, cast

from flowrunner.definition.triggers import (
    ScheduleSpec,
    TriggerSpec,
    WebhookSpec,
    schedule_spec,
    webhook_spec,
)

Kind = Literal["webhook", "schedule"]
Source = Literal["flow", "api"]


@dataclass(frozen=True, slots=True)
class Trigger:
    id: str
    account_id: str
    flow_id: str
    name: str
    kind: Kind
    source: Source
    enabled: bool
    config: Mapping[str, Any]
    created_at: datetime
    updated_at: datetime
    spec: TriggerSpec = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Parsed once per record read: the request path uses it without re-validating.
        object.__setattr__(self, "spec", spec_of(self.kind, self.name, self.config))

    @property
    def webhook(self) -> WebhookSpec:
        assert isinstance(self.spec, WebhookSpec)
        return self.spec

    @property
    def schedule(self) -> ScheduleSpec:
        assert isinstance(self.spec, ScheduleSpec)
        return self.spec

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "account_id": self.account_id,
            "flow_id": self.flow_id,
            "name": self.name,
            "kind": self.kind,
            "source": self.source,
            "enabled": self.enabled,
            "config": dict(self.config),
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Trigger:
        return cls(
            id=str(data["id"]),
            account_id=str(data["account_id"]),
            flow_id=str(data["flow_id"]),
            name=str(data["name"]),
            kind=cast(Kind, data["kind"]),
            source=cast(Source, data["source"]),
            enabled=bool(data["enabled"]),
            config=MappingProxyType(dict(data["config"])),
            created_at=datetime.fromisoformat(str(data["created_at"])),
            updated_at=datetime.fromisoformat(str(data["updated_at"])),
        )


def spec_of(kind: str, name: str, config: Mapping[str, Any]) -> TriggerSpec:
    body = {k: v for k, v in config.items() if k not in ("name", "kind")}
    return schedule_spec(name, body) if kind == "schedule" else webhook_spec(name, body)


def config_of(spec: TriggerSpec) -> dict[str, Any]:
    """The JSON form of a spec (what ``spec_of`` reads back)."""
    skip = ("name", "kind", "enabled")
    data = {f.name: getattr(spec, f.name) for f in fields(spec) if f.name not in skip}
    for key, value in list(data.items()):
        if isinstance(value, tuple):
            data[key] = list(value)
        elif isinstance(value, Mapping):
            data[key] = dict(value)
    if data.get("timeout") is not None:
        data["timeout"] = f"{data['timeout']}s"
    if data.get("interval") is not None:
        data["interval"] = f"{data['interval']}s"
    return {k: v for k, v in data.items() if v is not None}
