"""Suite-wide fixtures and the rule that CI never silently skips a real-service test."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings

from flowrunner.storage.sql.migrate import upgrade

T = TypeVar("T")

REQUIRE_SERVICES = os.environ.get("FLOWRUNNER_REQUIRE_SERVICES") == "1"

# Hypothesis's timing checks (a per-example deadline, "generation too slow") measure the
# machine, not the code: on a busy 2-core machine they fail tests that are right. Profiles
# that tests set themselves still apply on top of this one.
settings.register_profile("flowrunner", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("flowrunner")

HANG_GUARD = 60.0
"""Seconds a test waits for a state before calling the code stuck. Only a hang fails a test
by it, never slowness: tests assert on events, counts, order and statuses, and wait for a
condition instead of sleeping a fixed time or bounding how long something took (a busy
2-core CI machine is slow, not wrong)."""


@pytest.fixture(autouse=True)
def _no_log_handler_on_a_closed_stream() -> Iterator[None]:
    """A CLI command invoked in-process configures logging to write to ``sys.stderr``: under
    ``CliRunner`` that is the runner's captured stream, closed when the command returns.
    Left in place, the handler makes every later line (an SMTP test server's thread logs
    each disconnect) print "--- Logging error ---" with a traceback into the test output."""
    yield
    root = logging.getLogger()
    for handler in root.handlers[:]:
        if getattr(getattr(handler, "stream", None), "closed", False):
            root.removeHandler(handler)


def require_service(env_var: str, what: str) -> str:
    """The service's address from ``env_var``; skip (or, in CI, fail) when it is not set."""
    value = os.environ.get(env_var)
    if value:
        return value
    reason = f"{what} is not configured (set {env_var}; `make test` does when it is installed)"
    if REQUIRE_SERVICES:
        pytest.fail(f"CI requires every service: {reason}")
    pytest.skip(reason)


def run_async(fn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
    """Run ``fn(*args)`` to completion on a fresh loop in a thread.

    Session resources are created lazily from inside a test's (running) event loop, where
    ``asyncio.run`` is not allowed; a thread has no running loop.
    """
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(fn(*args))).result()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated once per session: a test copies it rather than migrating
    from scratch (seconds each; the migrations have their own tests)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    run_async(upgrade, f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def dynamodb_endpoint() -> Iterator[str]:
    """A DynamoDB-API server for the session: ``FLOWRUNNER_TEST_DYNAMODB_ENDPOINT`` if set, else
    moto's standalone server started on a free loopback port and stopped at the end."""
    if not os.environ.get("FLOWRUNNER_TEST_DYNAMODB_ENDPOINT") and (
        importlib.util.find_spec("moto") is None or importlib.util.find_spec("aioboto3") is None
    ):
        require_service("FLOWRUNNER_TEST_DYNAMODB_ENDPOINT", "DynamoDB (or moto[server])")
    from tests.dynamodb_server import endpoint_for_tests

    with endpoint_for_tests() as endpoint:
        yield endpoint
