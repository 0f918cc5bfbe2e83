"""The one request layer (``api.middleware``) on the hot route, ``POST /flows/{id}/run``: the
request id, then the body limit, then the input guard, then the log correlation — each refusal
quoting the request's id, and the log context bound for the request only."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import structlog
from fastapi import FastAPI

from tests.api.helpers import Api, Headers, error_of

RUN = "/api/v1/flows/{}/run?wait=30s"
FLOW_LIMIT = 64 * 1024  # the test settings' max_flow_bytes: /api/v1/flows/... paths


async def run_path(api: Api, headers: Headers) -> str:
    flow = await api.create_flow(headers)
    return RUN.format(flow["id"])


async def test_a_declared_oversized_run_body_is_a_413_quoting_the_request_id(
    api: Api, alice: Headers
) -> None:
    path = await run_path(api, alice)
    body = json.dumps({"input": {"text": "x" * FLOW_LIMIT}})
    response = await api.client.post(
        path,
        content=body,
        headers={**alice, "content-type": "application/json", "X-Request-ID": "big-1"},
    )
    assert response.status_code == 413
    assert response.headers["x-request-id"] == "big-1"
    error = error_of(response)
    assert error["code"] == "payload_too_large"
    assert error["correlation_id"] == "big-1"
    assert error["details"] == [{"limit_bytes": FLOW_LIMIT}]


async def test_a_streamed_oversized_run_body_is_cut_off_with_a_413_and_a_new_request_id(
    api: Api, alice: Headers
) -> None:
    path = await run_path(api, alice)
    chunks_sent = 0

    async def stream() -> AsyncIterator[bytes]:
        nonlocal chunks_sent
        yield b'{"input": {"text": "'
        for _ in range(100):
            chunks_sent += 1
            yield b"x" * 4096
        yield b'"}}'

    response = await api.client.post(
        path, content=stream(), headers={**alice, "content-type": "application/json"}
    )
    assert response.status_code == 413
    assert "content-length" not in response.request.headers
    assert chunks_sent < 100  # the JSON body is read by the guard, inside the limit
    rid = response.headers["x-request-id"]
    assert rid
    assert error_of(response)["correlation_id"] == rid


async def test_a_run_body_the_guard_refuses_is_a_400_quoting_the_request_id(
    api: Api, alice: Headers
) -> None:
    path = await run_path(api, alice)
    deep: Any = {"n": 0}
    for _ in range(100):
        deep = [deep]
    response = await api.client.post(
        path, json={"input": deep}, headers={**alice, "X-Request-ID": "deep-1"}
    )
    assert response.status_code == 400
    assert response.headers["x-request-id"] == "deep-1"
    error = error_of(response)
    assert (error["code"], error["correlation_id"]) == ("invalid_input", "deep-1")


async def test_a_nul_in_the_query_is_refused_before_the_body_is_read(
    api: Api, alice: Headers
) -> None:
    path = await run_path(api, alice)
    response = await api.client.post(
        path + "%00", json={"input": {}}, headers={**alice, "X-Request-ID": "nul-1"}
    )
    assert response.status_code == 400
    assert error_of(response)["details"][0]["loc"] == ["query"]
    assert response.headers["x-request-id"] == "nul-1"


async def test_the_body_limit_is_checked_before_the_input_guard(api: Api, alice: Headers) -> None:
    path = await run_path(api, alice)
    response = await api.client.post(
        path + "%00",
        content=b"x" * (FLOW_LIMIT + 1),
        headers={**alice, "content-type": "application/json"},
    )
    assert response.status_code == 413


async def test_the_request_id_is_in_the_log_context_during_the_request_only(
    api: Api, app: FastAPI
) -> None:
    async def context() -> dict[str, Any]:
        return structlog.contextvars.get_contextvars()

    app.add_api_route("/context", context)
    during = await api.client.get("/context", headers={"X-Request-ID": "ctx-1"})
    assert during.json()["request_id"] == "ctx-1"
    # httpx's ASGI transport runs the app in this task: the binding did not outlive it.
    assert "request_id" not in structlog.contextvars.get_contextvars()


async def test_a_valid_run_still_answers_with_its_request_id(api: Api, alice: Headers) -> None:
    path = await run_path(api, alice)
    response = await api.client.post(
        path, json={"input": {"n": 1}}, headers={**alice, "X-Request-ID": "ok-1"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"] == "ok-1"
    assert response.json()["status"] == "completed"
