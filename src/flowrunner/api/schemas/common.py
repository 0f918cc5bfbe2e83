"""Models shared by every domain: the error envelope (for the OpenAPI document), and the
date-time a query filter takes.

The envelope is documented by reference, not as a ``model`` in each route's ``responses``:
FastAPI builds a pydantic ``TypeAdapter`` per route and status for a ``model`` (~650 of them,
~40% of the adapters a server start built, all for this one model, all used only to write
the OpenAPI document). ``document_error_envelope`` adds the schemas the references name.
"""

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


_SCHEMAS = "#/components/schemas/"
_ENVELOPE_CONTENT = {"application/json": {"schema": {"$ref": _SCHEMAS + "ErrorEnvelope"}}}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries documenting the envelope for these statuses."""
    return {status: {"content": _ENVELOPE_CONTENT} for status in statuses}


def document_error_envelope(document: dict[str, Any]) -> dict[str, Any]:
    """Add the envelope's schemas to an OpenAPI ``document`` (in place, once), sorted among
    the others as FastAPI sorts them."""
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    if "ErrorEnvelope" not in schemas:
        envelope = ErrorEnvelope.model_json_schema(
            ref_template=_SCHEMAS + "{model}", mode="serialization"
        )
        found = {**envelope.pop("$defs"), "ErrorEnvelope": envelope, **schemas}
        document["components"]["schemas"] = {name: found[name] for name in sorted(found)}
    return document


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
