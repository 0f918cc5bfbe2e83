"""Models shared by every domain: the error envelope (for the OpenAPI document)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[Any]
    correlation_id: str


class ErrorEnvelope(BaseModel):
    error: ErrorBody


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries documenting the envelope for these statuses."""
    return {status: {"model": ErrorEnvelope} for status in statuses}


# Errors any authenticated route can answer with.
COMMON_ERRORS = error_responses(400, 401, 404, 413, 422, 429, 500, 503)
