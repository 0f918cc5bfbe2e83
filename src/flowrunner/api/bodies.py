"""Bodies that are YAML or JSON: flows may be posted as raw YAML or as ``{"content": ...}``.

FastAPI parses JSON bodies only, so these routes read the body themselves and validate the
JSON form with the same strict models (a bad one is the same 422 as anywhere else). The
OpenAPI document lists both media types through ``yaml_or_json_body``.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from flowrunner.api.errors import ApiError

M = TypeVar("M", bound=BaseModel)

# Not text/plain (nor form encoding): a web page may send those cross-site without a CORS
# preflight, and a browser adds the Basic credentials it remembers — a flow could be planted
# by any page the user visits. The YAML types need a preflight, which this API never grants.
YAML_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"})


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_yaml_or_json(request: Request, model: type[M]) -> M:
    """The body as ``model``: YAML text becomes ``{"content": text}``, JSON is validated."""
    kind = media_type(request)
    raw = await request.body()
    if kind in YAML_TYPES:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ApiError(400, "the YAML body is not valid UTF-8") from exc
        return model.model_validate({"content": text})
    if kind == "application/json" or kind.endswith("+json"):
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise RequestValidationError(
                [{"loc": ("body",), "msg": f"JSON decode error: {exc}", "type": "json_invalid"}]
            ) from exc
        try:
            return model.model_validate_json(raw) if isinstance(data, dict) else _not_object()
        except ValidationError as exc:
            raise RequestValidationError(
                [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
            ) from exc
    raise ApiError(
        415,
        'send the flow as application/yaml, or as application/json {"content": ...} '
        "(with curl: --data-binary @flow.yaml -H 'Content-Type: application/yaml')",
    )


def _not_object() -> Any:
    raise RequestValidationError(
        [{"loc": ("body",), "msg": "expected a JSON object", "type": "model_type"}]
    )


def yaml_or_json_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` declaring a required body in YAML (a string) or JSON (``model``)."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": model.model_json_schema()},
                # Any YAML document: its rules are the flow format's, reported as a 400
                # with line:column, not JSON Schema's.
                "application/yaml": {"schema": {"description": "a flow document in YAML"}},
            },
        }
    }
