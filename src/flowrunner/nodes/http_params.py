"""The params of ``http.request``: their JSON Schema, and the request they describe.

Parameter names are the original flowrunner's, so its flows load unchanged: ``url``,
``method``, ``headers``, ``query``, ``body``, ``form_data``, ``files``, ``timeout``,
``follow_redirects``, ``auth`` and the auth shortcuts ``bearer_token``, ``api_key`` +
``key_name``, ``username`` + ``password``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flowrunner.durations import DURATION_HINT, DURATION_PATTERN, parse_duration
from flowrunner.errors import ExecutionError
from flowrunner.expressions import to_text

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
DEFAULT_KEY_NAME = "X-API-Key"

_SCALAR = {"type": ["string", "number", "boolean", "null"]}
_FILE = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "field": {"type": "string", "minLength": 1, "description": "form field (default: file)"},
        "filename": {"type": "string"},
        "content": {"type": "string", "description": "the file's text"},
        "content_base64": {"type": "string", "description": "the file's bytes, base64"},
        "content_type": {"type": "string"},
    },
}
_SECRET = {"type": "string", "description": "use ${secrets.NAME}"}

PARAMS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["url"],
    "properties": {
        "url": {"type": "string", "minLength": 1, "description": "http:// or https:// URL"},
        "method": {
            "type": "string",
            "enum": [*METHODS, *(m.lower() for m in METHODS)],
            "description": "default GET",
        },
        "headers": {"type": "object", "additionalProperties": _SCALAR},
        "query": {
            "type": "object",
            "additionalProperties": {"anyOf": [_SCALAR, {"type": "array", "items": _SCALAR}]},
        },
        "body": {"description": "a mapping or list is sent as JSON; text as it is"},
        "form_data": {
            "type": "object",
            "additionalProperties": _SCALAR,
            "description": "URL-encoded form fields (multipart with files)",
        },
        "files": {
            "description": "multipart files: a list, or a mapping of field name to file",
            "anyOf": [
                {"type": "array", "items": _FILE, "maxItems": 100},
                {"type": "object", "additionalProperties": _FILE},
            ],
        },
        "timeout": {
            "type": ["number", "string"],
            "exclusiveMinimum": 0,
            "pattern": DURATION_PATTERN,
            "description": "seconds or a duration (default FLOWRUNNER_HTTP_TIMEOUT_SECONDS)",
        },
        "follow_redirects": {"type": "boolean", "description": "default true, at most 10"},
        "auth": {
            "type": "object",
            "description": "{username, password} | {token} | {api_key, key_name}",
            "additionalProperties": False,
            "properties": {
                "username": _SECRET,
                "password": _SECRET,
                "token": _SECRET,
                "api_key": _SECRET,
                "key_name": {"type": "string", "minLength": 1},
            },
        },
        "bearer_token": _SECRET,
        "api_key": _SECRET,
        "key_name": {"type": "string", "minLength": 1, "description": "default X-API-Key"},
        "username": _SECRET,
        "password": _SECRET,
    },
}


@dataclass(slots=True)
class RequestParts:
    """What httpx needs to build the request, from resolved params."""

    method: str
    url: str
    timeout: float
    follow_redirects: bool
    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, Any] = field(default_factory=dict)
    content: bytes | str | None = None
    data: dict[str, str] | None = None
    files: list[tuple[str, tuple[str | None, bytes, str | None]]] | None = None
    # Headers that carry credentials besides Authorization: dropped on a cross-origin
    # redirect, as httpx drops Authorization.
    credential_headers: frozenset[str] = frozenset()


class ParamError(ExecutionError):
    """A resolved param has the wrong shape (an expression produced something unusable)."""

    code = "invalid_params"


def request_parts(node_id: str, params: Mapping[str, Any], default_timeout: float) -> RequestParts:
    """The request ``params`` describe; ParamError naming the param when they cannot."""

    def fail(name: str, message: str) -> ParamError:
        return ParamError(f"node '{node_id}': param {name}: {message}", node_id=node_id)

    url = params.get("url")
    if not isinstance(url, str) or not url.strip():
        raise fail("url", f"must be a non-empty string, got {_shown(url)}")
    method = params.get("method") or "GET"
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise fail("method", f"must be one of {', '.join(METHODS)}, got {_shown(method)}")
    timeout = default_timeout
    if params.get("timeout") is not None:
        try:
            timeout = parse_duration(params["timeout"])
        except ValueError as exc:
            raise fail("timeout", f"{exc} ({DURATION_HINT})") from exc
        if timeout <= 0:
            raise fail("timeout", "must be more than 0")
    follow = params.get("follow_redirects", True)
    if not isinstance(follow, bool):
        raise fail("follow_redirects", f"must be true or false, got {_shown(follow)}")
    parts = RequestParts(method.upper(), url.strip(), timeout, follow)
    # Surrounding whitespace is not part of a header value (RFC 9110), and h11 refuses it:
    # "Bearer ${secrets.T}" with an empty secret must still send, and get its 401.
    parts.headers = {
        str(k): to_text(v).strip() for k, v in _mapping(params, "headers", fail).items()
    }
    parts.query = {
        str(k): [to_text(i) for i in v] if isinstance(v, list) else to_text(v)
        for k, v in _mapping(params, "query", fail).items()
    }
    _body(parts, params, fail)
    _auth(parts, params, fail)
    return parts


def _body(parts: RequestParts, params: Mapping[str, Any], fail: Any) -> None:
    body = params.get("body")
    form = _mapping(params, "form_data", fail)
    files = _files(params.get("files"), fail)
    if body is not None and (form or files):
        raise fail("body", "give either body or form_data/files, not both")
    if files:
        parts.files = files
        parts.data = {str(k): to_text(v) for k, v in form.items()}
    elif form:
        parts.data = {str(k): to_text(v) for k, v in form.items()}
    elif isinstance(body, str):
        parts.content = body
    elif body is not None:
        try:
            parts.content = json.dumps(body, ensure_ascii=False, allow_nan=False).encode()
        except (TypeError, ValueError) as exc:
            raise fail("body", f"cannot be sent as JSON: {exc}") from exc
        if not any(k.lower() == "content-type" for k in parts.headers):
            parts.headers["Content-Type"] = "application/json"


def _files(value: Any, fail: Any) -> list[tuple[str, tuple[str | None, bytes, str | None]]] | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        items = [
            ({"field": str(k)} | dict(v)) if isinstance(v, Mapping) else v for k, v in value.items()
        ]
    elif isinstance(value, list):
        items = value
    else:
        raise fail("files", f"must be a list or a mapping, got {_shown(value)}")
    found = []
    for index, item in enumerate(items):
        where = f"files[{index}]"
        if not isinstance(item, Mapping):
            raise fail(where, f"must be a mapping, got {_shown(item)}")
        text, encoded = item.get("content"), item.get("content_base64")
        if (text is None) == (encoded is None):
            raise fail(where, "give exactly one of content and content_base64")
        if encoded is not None:
            try:
                data = base64.b64decode(str(encoded), validate=True)
            except (binascii.Error, ValueError) as exc:
                raise fail(f"{where}.content_base64", f"is not base64: {exc}") from exc
        else:
            data = to_text(text).encode()
        name = item.get("filename")
        kind = item.get("content_type")
        found.append(
            (
                str(item.get("field") or "file"),
                (
                    to_text(name) if name is not None else None,
                    data,
                    to_text(kind) if kind else None,
                ),
            )
        )
    return found


def _auth(parts: RequestParts, params: Mapping[str, Any], fail: Any) -> None:
    """Credentials from the ``auth`` block, else from the original's shortcuts at the top
    level. A bearer token wins over username/password (both would be Authorization); an
    API key goes in its own header beside either."""
    auth = _mapping(params, "auth", fail)
    source, where = (auth, "auth.") if auth else (params, "")
    token = source.get("token" if auth else "bearer_token")
    api_key = source.get("api_key")
    username, password = source.get("username"), source.get("password")
    if api_key is not None and api_key != "":
        name = to_text(source.get("key_name") or DEFAULT_KEY_NAME)
        parts.headers[name] = to_text(api_key)
        parts.credential_headers = frozenset({name.lower()})
    if token is not None and token != "":
        parts.headers["Authorization"] = f"Bearer {to_text(token)}"
    elif username is not None or password is not None:
        if username is None:
            raise fail(f"{where}username", "is required with password")
        pair = f"{to_text(username)}:{to_text(password) if password is not None else ''}"
        parts.headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()


def _mapping(params: Mapping[str, Any], name: str, fail: Any) -> Mapping[str, Any]:
    value = params.get(name)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise fail(name, f"must be a mapping, got {_shown(value)}")
    return value


def _shown(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "an empty string" if not value.strip() else f"{value!r}"
    return f"a {type(value).__name__}"
