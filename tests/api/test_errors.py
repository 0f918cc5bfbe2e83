"""The API's contract for every response: the error envelope, request ids, body limits,
strict bodies, and a 500 that reveals nothing but its correlation id."""

from __future__ import annotations

import dataclasses
import logging
import socket
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from flowrunner.definition.limits import FlowLimits
from flowrunner.flows import FlowChecker, FlowRegistry
from flowrunner.storage.sql import SqlStore
from tests.api.helpers import YAML_TYPE, Api, Headers, error_of, flow_yaml


async def test_every_response_carries_a_request_id_taken_from_the_request(api: Api) -> None:
    given = await api.client.get("/healthz", headers={"X-Request-ID": "req-42"})
    assert given.headers["x-request-id"] == "req-42"
    fresh = await api.client.get("/healthz")
    assert len(fresh.headers["x-request-id"]) == 32


async def test_an_unsafe_request_id_is_replaced(api: Api) -> None:
    response = await api.client.get("/healthz", headers={"X-Request-ID": "a b\tc" * 50})
    assert response.headers["x-request-id"] != "a b\tc" * 50


async def test_unknown_route_is_a_404_envelope_with_the_correlation_id(api: Api) -> None:
    response = await api.client.get("/api/v1/nothing-here", headers={"X-Request-ID": "r1"})
    assert response.status_code == 404
    error = error_of(response)
    assert error["code"] == "not_found"
    assert error["correlation_id"] == "r1"


async def test_missing_credentials_are_a_401_with_a_challenge(api: Api) -> None:
    response = await api.client.get("/api/v1/flows")
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthenticated"
    assert "Basic" in response.headers["www-authenticate"]


async def test_unknown_body_fields_and_wrong_types_are_a_422(api: Api, alice: Headers) -> None:
    unknown = await api.client.post(
        "/api/v1/tokens", json={"name": "ci", "colour": "red"}, headers=alice
    )
    assert unknown.status_code == 422
    assert error_of(unknown)["details"][0]["loc"] == ["body", "colour"]
    wrong_type = await api.client.post(
        "/api/v1/tokens", json={"name": "ci", "expires_in_seconds": "60"}, headers=alice
    )
    assert wrong_type.status_code == 422


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/accounts", {"username": "eve", "password": "password-123", "is_admin": True}),
        ("/api/v1/flows", {"content": flow_yaml(), "id": "chosen-id"}),
        ("/api/v1/flows", {"content": flow_yaml(), "account_id": "someone"}),
        ("/api/v1/tokens", {"name": "t", "created_at": "2020-01-01T00:00:00Z"}),
        ("/api/v1/accounts/me/secrets", {"key": "K", "value": "v", "account_id": "x"}),
    ],
)
async def test_no_body_can_set_server_owned_fields(
    api: Api, admin: Headers, path: str, body: dict[str, object]
) -> None:
    response = await api.client.post(path, json=body, headers=admin)
    assert response.status_code == 422
    assert error_of(response)["code"] == "validation_error"


async def test_a_declared_oversized_body_is_a_413_before_it_is_read(
    api: Api, alice: Headers
) -> None:
    big = flow_yaml() + "#" * (64 * 1024)
    response = await api.client.post("/api/v1/flows", content=big, headers={**alice, **YAML_TYPE})
    assert response.status_code == 413
    assert error_of(response)["code"] == "payload_too_large"
    assert error_of(response)["details"] == [{"limit_bytes": 64 * 1024}]


async def test_a_streamed_oversized_body_is_cut_off_with_a_413(api: Api, alice: Headers) -> None:
    chunks_sent = 0

    async def stream() -> AsyncIterator[bytes]:
        nonlocal chunks_sent
        for _ in range(100):
            chunks_sent += 1
            yield b"#" * 4096

    response = await api.client.post(
        "/api/v1/flows", content=stream(), headers={**alice, **YAML_TYPE}
    )
    assert response.status_code == 413
    assert "content-length" not in response.request.headers
    assert chunks_sent < 100  # reading stopped soon after the limit


async def test_other_routes_have_the_smaller_general_limit(api: Api, alice: Headers) -> None:
    value = "x" * (20 * 1024)
    response = await api.client.post(
        "/api/v1/accounts/me/secrets", json={"key": "BIG", "value": value}, headers=alice
    )
    assert response.status_code == 413


async def test_an_unexpected_error_is_a_500_with_only_the_correlation_id(
    api: Api, app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    async def boom() -> None:
        raise RuntimeError("database password is hunter2")

    app.add_api_route("/boom", boom)
    with caplog.at_level(logging.ERROR, logger="flowrunner.api"):
        response = await api.client.get("/boom", headers={"X-Request-ID": "trace-7"})
    assert response.status_code == 500
    error = error_of(response)
    assert error["code"] == "internal_error"
    assert error["details"] == []
    assert "hunter2" not in response.text
    assert "trace-7" in error["message"]
    assert any("trace-7" in r.getMessage() and r.exc_info for r in caplog.records)


async def test_openapi_and_docs_are_served(api: Api) -> None:
    spec = await api.client.get("/api/v1/openapi.json")
    assert spec.status_code == 200
    paths = spec.json()["paths"]
    assert "/api/v1/flows/{flow_id}/versions/{number}/restore" in paths
    assert "application/yaml" in paths["/api/v1/flows"]["post"]["requestBody"]["content"]
    docs = await api.client.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


async def test_openapi_documents_the_error_envelope_without_a_model_per_route(
    api: Api,
) -> None:
    document = (await api.client.get("/api/v1/openapi.json")).json()
    schemas = document["components"]["schemas"]
    assert schemas["ErrorEnvelope"] == {
        "properties": {"error": {"$ref": "#/components/schemas/ErrorBody"}},
        "required": ["error"],
        "title": "ErrorEnvelope",
        "type": "object",
    }
    assert schemas["ErrorBody"]["required"] == ["code", "message", "details", "correlation_id"]
    assert list(schemas) == sorted(schemas)
    errors = document["paths"]["/api/v1/flows/{flow_id}"]["get"]["responses"]
    assert errors["404"] == {
        "description": "Not Found",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}},
    }
    # Documented by reference: FastAPI builds a pydantic adapter per route and status for a
    # `model` in `responses` (~650 at a server start, all for this one model).
    routes = [
        route
        for route in iter_route_contexts(api.app.routes)
        if isinstance(route.original_route, APIRoute)
    ]
    assert len(routes) > 50
    assert all(int(status) < 400 for route in routes for status in route.response_fields)


async def test_health_and_readiness(api: Api) -> None:
    assert (await api.client.get("/healthz")).json() == {
        "status": "ok",
        "event_bus": {
            "kind": "in-process",
            "connected": True,
            "dropped_events": 0,
            "subscriptions": 0,
            "subscriptions_live": 0,
        },
    }
    assert (await api.client.get("/readyz")).json()["status"] == "ok"  # details: test_health


async def test_readiness_fails_when_storage_is_unreachable(api: Api) -> None:
    # A PostgreSQL store on a port nothing listens on: every round trip fails to connect.
    unreachable = SqlStore(f"postgresql://flowrunner@127.0.0.1:{closed_port()}/none")
    healthy = api.app.state.services
    api.app.state.services = dataclasses.replace(healthy, store=unreachable)
    try:
        response = await api.client.get("/readyz")
    finally:
        api.app.state.services = healthy
        await unreachable.close()
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "reason": "storage_unavailable"}
    assert (await api.client.get("/healthz")).status_code == 200


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_a_stored_flow_over_a_lowered_byte_limit_is_a_413_when_restored(
    api: Api, app: FastAPI, alice: Headers
) -> None:
    big = flow_yaml() + "#" * 2000
    headers = {**alice, **YAML_TYPE}
    created = await api.client.post("/api/v1/flows", content=big, headers=headers)
    flow_id = created.json()["id"]
    await api.client.put(f"/api/v1/flows/{flow_id}", content=flow_yaml(), headers=headers)
    services = app.state.services
    lowered = FlowRegistry(services.store, services.audit, FlowChecker(FlowLimits(max_bytes=1000)))
    app.state.services = dataclasses.replace(services, flows=lowered)
    try:
        response = await api.client.post(
            f"/api/v1/flows/{flow_id}/versions/1/restore", headers=alice
        )
    finally:
        app.state.services = services
        lowered.close()
    assert response.status_code == 413
    error = error_of(response)
    assert error["code"] == "payload_too_large"
    assert "over the limit of 1000 bytes" in error["message"]
    assert error["details"] == [{"limit_bytes": 1000, "size_bytes": len(big.encode())}]
