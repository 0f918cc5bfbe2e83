"""One worker process, driven from the event loop."""

from __future__ import annotations

import json

from flowrunner.scripting.codec import encode_request, encode_scope
from flowrunner.scripting.process import AsyncWorker, Limits
from flowrunner.scripting.worker import (
    KIND_FUNCTION,
    OP_RUN,
    STATUS_VALUE,
)

LIMITS = Limits(heap_mb=32, max_result_bytes=10_000)


def run_request(code: str, scope: dict[str, object] | None = None) -> bytes:
    scope = scope or {}
    return encode_request(OP_RUN, KIND_FUNCTION, ",".join(scope), code, encode_scope(scope))


async def test_async_worker_answers_requests_until_killed() -> None:
    worker = await AsyncWorker.spawn(LIMITS)
    try:
        reply = await worker.call(run_request("return input * 2", {"input": 21}))
        assert reply.status == STATUS_VALUE
        assert json.loads(reply.payload)["v"] == 42
        assert worker.alive
    finally:
        await worker.kill()
    assert not worker.alive
    assert worker.process.returncode is not None
