"""What an inbound webhook request becomes: the run input ``{body, headers, query, method,
path}``, with the body parsed by its content type.

The raw bytes are verified before anything is parsed (``verification``); only the parsed
form is stored with the run. Credentials a sender puts in headers (Authorization, cookies, a
token scheme's header) are dropped: the run input is stored, and secrets never are.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import orjson

CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


class BadBody(ValueError):
    """The body does not parse as its declared content type."""


@dataclass(frozen=True, slots=True)
class HookRequest:
    method: str
    path: str
    query: Mapping[str, str | list[str]]
    headers: Mapping[str, str]
    """Lower-case names."""
    raw: bytes
    client: str

    @property
    def media_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def run_input(request: HookRequest, drop_headers: Sequence[str] = ()) -> dict[str, Any]:
    dropped = CREDENTIAL_HEADERS.union(h.lower() for h in drop_headers)
    return {
        "body": parse_body(request.media_type, request.raw),
        "headers": {k: v for k, v in request.headers.items() if k not in dropped},
        "query": dict(request.query),
        "method": request.method,
        "path": request.path,
    }


def parse_body(media_type: str, raw: bytes) -> Any:
    if not raw:
        return None
    if media_type == "application/json" or media_type.endswith("+json"):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise BadBody(f"the body is not JSON: {exc}") from exc
    if media_type == "application/x-www-form-urlencoded":
        try:
            form = parse_qs(raw.decode(), keep_blank_values=True, max_num_fields=1000)
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadBody(f"the body is not a URL-encoded form: {exc}") from exc
        return {k: v[0] if len(v) == 1 else v for k, v in form.items()}
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        # Binary: carried as base64, so the input stays JSON.
        return {"base64": base64.b64encode(raw).decode()}
    return text


def query_of(pairs: Sequence[tuple[str, str]]) -> dict[str, str | list[str]]:
    query: dict[str, str | list[str]] = {}
    for key, value in pairs:
        known = query.get(key)
        if known is None:
            query[key] = value
        elif isinstance(known, list):
            known.append(value)
        else:
            query[key] = [known, value]
    return query
