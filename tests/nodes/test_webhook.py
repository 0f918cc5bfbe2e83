"""The ``webhook`` node end to end (load_flow + compile_flow + run) against a real receiver on
127.0.0.1: signed so the ``standardwebhooks`` library verifies it, retried by the node's
``retry`` policy with one message id, refused 4xx and refused destinations failing the node."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from standardwebhooks import Webhook

from flowrunner.definition import compile_flow, load_flow
from flowrunner.engine import RunResult
from flowrunner.errors import NodeFailed
from tests.webhook_receiver import Receiver, receiving

SECRET = "whsec_dGVzdC13ZWJob29rLW5vZGUtc2VjcmV0"


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    monkeypatch.setenv("FLOWRUNNER_HTTP_ALLOW", "127.0.0.1")
    monkeypatch.delenv("FLOWRUNNER_HTTP_ALLOW_PRIVATE", raising=False)
    with receiving() as running:
        yield running


def flow(url: str, retry: str = "") -> str:
    return f"""\
metadata: {{name: Notify}}
nodes:
  send:
    type: webhook
    params:
      url: {url}
      secret: ${{secrets.HOOK}}
      payload: {{type: order.shipped, data: {{order: "${{input.order}}"}}}}
      headers: {{X-Source: test}}
    {retry}
"""


async def run(text: str, **kwargs: Any) -> RunResult:
    return await compile_flow(load_flow(text)).run({"order": 7}, secrets={"HOOK": SECRET}, **kwargs)


async def test_sends_a_signed_payload_the_library_verifies(receiver: Receiver) -> None:
    result = await run(flow(f"{receiver.url}/in"))
    [got] = receiver.wait_for(1)
    assert Webhook(SECRET).verify(got.body, got.headers) == {
        "type": "order.shipped",
        "data": {"order": 7},
    }
    assert got.headers["X-Source"] == "test"
    assert result.output["status_code"] == 200
    assert result.output["response"] == {"ok": True}
    assert result.output["webhook_id"] == got.headers["webhook-id"]
    assert SECRET not in json.dumps(result.output)


async def test_failures_are_retried_by_the_node_policy_with_one_message_id(
    receiver: Receiver,
) -> None:
    receiver.answers = [500, 503]
    result = await run(flow(f"{receiver.url}/in", "retry: {max_retries: 2, wait: 10ms}"))
    arrived = receiver.wait_for(3)
    assert result.output["status_code"] == 200
    assert len({r.headers["webhook-id"] for r in arrived}) == 1
    for received in arrived:
        Webhook(SECRET).verify(received.body, received.headers)


async def test_a_refusing_receiver_fails_the_node_with_its_status(receiver: Receiver) -> None:
    receiver.answers = [410]
    with pytest.raises(NodeFailed, match="answered 410"):
        await run(flow(f"{receiver.url}/in"))


async def test_the_ssrf_guard_refuses_what_is_not_allowed(receiver: Receiver) -> None:
    with pytest.raises(NodeFailed, match=r"169\.254\.169\.254"):
        await run(flow("http://169.254.169.254/latest/meta-data"))
    assert receiver.received == []
