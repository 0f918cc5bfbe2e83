"""Models of the flow registry's routes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from flowrunner.api.schemas import RequestModel, ResponseModel
from flowrunner.errors import Problem
from flowrunner.flows import SavedFlow
from flowrunner.flows.registry import MAX_VERSION_MESSAGE
from flowrunner.storage import Flow, FlowVersion

Tag = str
NAME = Field(default=None, min_length=1, max_length=200)
DESCRIPTION = Field(default=None, max_length=10_000)
TAGS = Field(default=None, max_length=50)
MESSAGE = Field(
    default=None,
    max_length=MAX_VERSION_MESSAGE,
    description="a note stored with the version (with a YAML body: the `message` query parameter)",
)


class FlowCreate(RequestModel):
    """JSON form of a new flow (as in the original); YAML may also be posted as is."""

    content: str = Field(description="the flow's YAML")
    name: str | None = NAME
    description: str | None = DESCRIPTION
    tags: list[Tag] | None = TAGS
    message: str | None = MESSAGE


class FlowUpdate(RequestModel):
    content: str = Field(description="the flow's YAML")
    name: str | None = NAME
    description: str | None = DESCRIPTION
    message: str | None = MESSAGE


class FlowPatch(RequestModel):
    name: str | None = NAME
    description: str | None = DESCRIPTION
    tags: list[Tag] | None = TAGS


class FlowValidate(RequestModel):
    content: str = Field(description="the flow's YAML")


class FlowOut(ResponseModel):
    id: str
    name: str
    description: str
    tags: list[str]
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, flow: Flow) -> FlowOut:
        return cls(
            id=flow.id,
            name=flow.name,
            description=flow.description,
            tags=list(flow.tags),
            version=flow.current_version,
            created_at=flow.created_at,
            updated_at=flow.updated_at,
        )


class FlowDetail(FlowOut):
    content: str
    checksum: str

    @classmethod
    def of_saved(cls, saved: SavedFlow) -> FlowDetail:
        base = FlowOut.of(saved.flow).model_dump()
        return cls(**base, content=saved.version.yaml, checksum=saved.version.checksum)


class FlowPage(ResponseModel):
    items: list[FlowOut]
    next_cursor: str | None


class VersionOut(ResponseModel):
    number: int
    checksum: str
    author: str | None
    created_at: datetime
    message: str | None

    @classmethod
    def of(cls, version: FlowVersion) -> VersionOut:
        return cls(
            number=version.number,
            checksum=version.checksum,
            author=version.author,
            created_at=version.created_at,
            message=version.message,
        )


class VersionDetail(VersionOut):
    content: str

    @classmethod
    def of_version(cls, version: FlowVersion) -> VersionDetail:
        return cls(**VersionOut.of(version).model_dump(), content=version.yaml)


class VersionPage(ResponseModel):
    items: list[VersionOut]
    next_cursor: str | None


class DiffOut(ResponseModel):
    from_version: int
    to_version: int
    diff: str = Field(description="unified diff; empty when the versions are identical")


class ProblemOut(ResponseModel):
    path: str
    message: str
    line: int | None
    column: int | None
    severity: Literal["error", "warning"]
    hint: str | None = None

    @classmethod
    def of(cls, problem: Problem) -> ProblemOut:
        return cls(
            path=problem.path,
            message=problem.message,
            line=problem.line,
            column=problem.column,
            severity=problem.severity,
            hint=problem.hint,
        )


class ValidationReport(ResponseModel):
    valid: bool
    problems: list[ProblemOut]
