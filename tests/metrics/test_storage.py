"""Storage latency: every family's calls timed, errors counted, results and errors unchanged."""

from __future__ import annotations

import pytest

from flowrunner.errors import NotFound
from flowrunner.metrics import Metrics, metered_store
from flowrunner.storage.memory import MemoryStore


async def test_calls_are_timed_by_family_and_operation_and_errors_pass_through(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    metrics = Metrics()
    store = metered_store(MemoryStore(), metrics)
    await store.connect()
    account = await store.accounts.create("ada", "hash")
    assert (await store.accounts.get(account.id)).username == "ada"
    with pytest.raises(NotFound):
        await store.accounts.get("missing")
    labels = {"family": "accounts", "operation": "get"}
    timed = metrics.registry.get_sample_value("flowrunner_storage_operation_seconds_count", labels)
    assert timed == 2
    errors = metrics.registry.get_sample_value(
        "flowrunner_storage_operation_errors_total", {**labels, "error": "NotFound"}
    )
    assert errors == 1
    await store.close()
