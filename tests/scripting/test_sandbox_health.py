"""``Sandbox.health()``: what readiness reports, read without ever starting a worker."""

from __future__ import annotations

import pytest

from flowrunner.errors import SandboxError
from flowrunner.scripting import Sandbox
from flowrunner.scripting.process import AsyncWorker, Limits


async def test_health_never_starts_a_worker_and_says_why_a_start_failed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sandbox = Sandbox(workers=1, timeout=1.0, memory_mb=64)
    try:
        assert sandbox.health() == sandbox.health()  # asking twice starts nothing either
        assert (sandbox.health().status, sandbox.health().workers_alive) == ("not_started", 0)

        async def cannot_spawn(cls: type[AsyncWorker], limits: Limits) -> AsyncWorker:
            raise OSError("no room for a worker")

        with monkeypatch.context() as patched:
            patched.setattr(AsyncWorker, "spawn", classmethod(cannot_spawn))
            with pytest.raises(SandboxError):
                await sandbox.evaluate_expression("1 + 1", {})
        failed = sandbox.health()
        assert (failed.status, failed.workers_alive) == ("failed", 0)
        assert "no room for a worker" in (failed.reason or "")

        # The next script starts the pool again, and it is ready.
        assert await sandbox.evaluate_expression("1 + 1", {}) == 2
        assert (sandbox.health().status, sandbox.health().workers_alive) == ("ready", 1)
        assert sandbox.health().reason is None
    finally:
        await sandbox.close()
    assert sandbox.health().status == "closed"
