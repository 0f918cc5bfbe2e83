"""Models shared by every domain: the error envelope (for the OpenAPI document), and the
date-time a query filter takes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator


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


def _iso_text(value: Any) -> Any:
    # Pydantic also reads a bare number as seconds since 1970; the document promises an
    # ISO 8601 date-time, and `created_before=0.0` is more likely a mistake than 1970.
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return value
        raise ValueError("an ISO 8601 date-time is expected, e.g. 2026-12-07T10:00:00Z")
    return value


# A date-time filter in a query string: ISO 8601 text only.
QueryDateTime = Annotated[datetime, BeforeValidator(_iso_text)]
