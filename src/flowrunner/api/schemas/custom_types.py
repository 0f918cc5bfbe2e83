"""Models of ``/api/v1/node-types/custom``: an account's JavaScript node types."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from flowrunner.api.schemas import ResponseModel
from flowrunner.custom_types import CustomType


class CustomTypeOut(ResponseModel):
    name: str
    description: str
    params: dict[str, Any] = Field(description="JSON Schema of a node's params")
    script: str
    actions: list[str]
    version: int
    author: str | None
    message: str | None
    created_at: datetime = Field(description="when this version was saved")

    @classmethod
    def of(cls, saved: CustomType) -> CustomTypeOut:
        spec = saved.spec
        return cls(
            name=spec.name,
            description=spec.description,
            params=dict(spec.params),
            script=spec.script,
            actions=list(spec.actions),
            version=saved.version,
            author=saved.author,
            message=saved.message,
            created_at=saved.created_at,
        )


class CustomTypeList(ResponseModel):
    items: list[CustomTypeOut]


class CustomTypeVersionPage(ResponseModel):
    items: list[CustomTypeOut]
    next_cursor: str | None
