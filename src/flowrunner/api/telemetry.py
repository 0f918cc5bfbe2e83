"""Whether FastAPI's built-in OpenTelemetry support is switched on for the app.

FastAPI asks on every request whether a tracer, meter or logger provider is configured, and
the OpenTelemetry API answers by reading the environment each time: ~3% of the CPU of a
run request on a server that exports nothing. The answer is read once instead, when the app
is built: telemetry stays on (FastAPI's defaults) if OpenTelemetry is configured by then —
an ``OTEL_*`` variable set, as ``opentelemetry-instrument`` and the exporters' settings do,
or a provider installed before the server starts — and is off otherwise.
"""

from __future__ import annotations

import os

from fastapi.telemetry import TelemetryConfig

OFF: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def telemetry_config() -> TelemetryConfig | None:
    """``FastAPI(telemetry=...)``: None (FastAPI's defaults) when OpenTelemetry is set up."""
    return None if _configured() else OFF


def _configured() -> bool:
    if any(name.startswith(("OTEL_", "FASTAPI_OTEL_")) for name in os.environ):
        return True
    try:
        from fastapi.telemetry._api import _unconfigured
        from opentelemetry import _logs, metrics, trace
    except ImportError:  # another FastAPI: keep its own per-request check
        return True
    providers = (
        trace.get_tracer_provider(),
        metrics.get_meter_provider(),
        _logs.get_logger_provider(),
    )
    return not all(_unconfigured(provider) for provider in providers)
