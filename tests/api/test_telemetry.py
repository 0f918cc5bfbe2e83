"""FastAPI's OpenTelemetry support: on when OpenTelemetry is configured, off otherwise."""

from __future__ import annotations

import os

import pytest

from flowrunner.api.telemetry import OFF, telemetry_config


def test_without_any_opentelemetry_setup_the_per_request_check_is_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [n for n in os.environ if n.startswith(("OTEL_", "FASTAPI_OTEL_"))]:
        monkeypatch.delenv(name)
    assert telemetry_config() == OFF


def test_an_otel_variable_keeps_fastapis_telemetry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "flowrunner")
    assert telemetry_config() is None


def test_a_provider_installed_before_the_app_keeps_fastapis_telemetry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from opentelemetry import trace

    class Provider(trace.NoOpTracerProvider):
        """Stands for an SDK provider: any provider that is not the API's deferred one."""

    monkeypatch.setattr(trace, "get_tracer_provider", lambda: Provider())
    assert telemetry_config() is None
