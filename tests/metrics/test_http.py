"""HTTP request counts and durations by route template, each series found again on every
request (the middleware keeps the labelled series it made)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.responses import PlainTextResponse

from flowrunner.metrics import HttpMetricsMiddleware, Metrics


@pytest.fixture
def metrics(monkeypatch: pytest.MonkeyPatch) -> Metrics:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    return Metrics()


def app_with(metrics: Metrics) -> FastAPI:
    app = FastAPI()
    router = APIRouter()

    @router.get("/items/{item_id}")
    async def item(item_id: str) -> PlainTextResponse:
        return PlainTextResponse(item_id, status_code=404 if item_id == "gone" else 200)

    app.include_router(router, prefix="/api/v1")
    app.add_middleware(HttpMetricsMiddleware, metrics=metrics)
    return app


def count(metrics: Metrics, **labels: str) -> float:
    return metrics.registry.get_sample_value("flowrunner_http_requests_total", labels) or 0.0


async def test_requests_are_counted_per_method_template_and_status_across_requests(
    metrics: Metrics,
) -> None:
    transport = httpx.ASGITransport(app_with(metrics))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for item in ("a", "b", "gone", "c"):
            await client.get(f"/api/v1/items/{item}")
        await client.get("/nowhere")
    route = "/api/v1/items/{item_id}"
    assert count(metrics, method="GET", route=route, status="200") == 3
    assert count(metrics, method="GET", route=route, status="404") == 1
    assert count(metrics, method="GET", route="<unmatched>", status="404") == 1
    durations = metrics.registry.get_sample_value(
        "flowrunner_http_request_duration_seconds_count", {"route": route}
    )
    assert durations == 4
