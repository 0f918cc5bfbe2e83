"""Suite-wide fixtures and the rule that CI never silently skips a real-service test."""

from __future__ import annotations

import os

import pytest

REQUIRE_SERVICES = os.environ.get("FLOWRUNNER_REQUIRE_SERVICES") == "1"


def require_service(env_var: str, what: str) -> str:
    """The service's address from ``env_var``; skip (or, in CI, fail) when it is not set."""
    value = os.environ.get(env_var)
    if value:
        return value
    reason = f"{what} is not configured (set {env_var}; `make test` does when it is installed)"
    if REQUIRE_SERVICES:
        pytest.fail(f"CI requires every service: {reason}")
    pytest.skip(reason)
