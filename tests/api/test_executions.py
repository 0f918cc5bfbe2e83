"""Runs over HTTP: start (wait, idempotency, versions), read, list, logs, cancel, retry, SSE."""

from __future__ import annotations

import asyncio
import json

from tests.api.helpers import Api, Headers, error_of
from tests.conftest import HANG_GUARD

# Long enough for any run of these tests, on any machine: it only guards against a hang.
WAIT = f"?wait={HANG_GUARD:.0f}s"

RUN = "/api/v1/flows/{}/run"
EXECUTIONS = "/api/v1/executions"

STEPS = """metadata: {name: Steps}
nodes:
  greet:
    type: set
    params: {values: {greeting: "hi ${input.name}"}}
    next: {default: say}
  say:
    type: log
    params: {message: "${shared.greeting}"}
    next: {default: done}
  done:
    type: set
    params: {values: {done: true}}
"""

SLOW = """metadata: {name: Slow}
nodes:
  nap:
    type: delay
    params: {duration: "${input.nap}"}
    next: {default: after}
  after:
    type: set
    params: {values: {woke: true}}
"""

FAILING = """metadata: {name: Failing}
nodes:
  ok: {type: set, params: {values: {a: 1}}, next: {default: boom}}
  boom: {type: fail, params: {message: "no luck"}}
"""


async def _flow(api: Api, who: Headers, yaml: str) -> str:
    flow_id: str = (await api.create_flow(who, yaml))["id"]
    return flow_id


async def test_run_with_wait_returns_the_finished_execution(api: Api, alice: Headers) -> None:
    flow_id = await _flow(api, alice, STEPS)
    response = await api.client.post(
        RUN.format(flow_id) + WAIT,
        json={"input": {"name": "Ada"}},
        headers=alice,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "completed"
    assert body["output"] == {"done": True}
    assert body["flow_version"] == 1
    assert body["progress"] == 1.0
    assert body["input"] == {"name": "Ada"}
    assert body["duration_ms"] >= 0


async def test_reading_a_run_with_wait_answers_once_it_has_ended(
    api: Api, alice: Headers, bob: Headers
) -> None:
    flow_id = await _flow(api, alice, SLOW)
    started = await api.client.post(
        RUN.format(flow_id), json={"input": {"nap": "1s"}}, headers=alice
    )
    assert started.status_code == 202
    url = f"{EXECUTIONS}/{started.json()['execution_id']}"
    # Another account's run is not waited for: it does not exist for them.
    assert (await api.client.get(url + WAIT, headers=bob)).status_code == 404
    waited = await api.client.get(url + WAIT, headers=alice)
    assert waited.status_code == 200
    assert waited.json()["status"] == "completed"
    assert waited.json()["output"] == {"woke": True}
    # An ended run is answered at once, as without wait.
    again = await api.client.get(url + WAIT, headers=alice)
    assert again.json() == waited.json()
    bad = await api.client.get(url + "?wait=soon", headers=alice)
    assert bad.status_code == 400
    assert error_of(bad)["code"] == "invalid_input"


async def test_run_without_wait_is_accepted_and_can_be_read_later(api: Api, alice: Headers) -> None:
    flow_id = await _flow(api, alice, STEPS)
    response = await api.client.post(RUN.format(flow_id), json={"shared": {}}, headers=alice)
    assert response.status_code == 202
    accepted = response.json()
    assert set(accepted) == {"execution_id", "status"}
    assert response.headers["location"] == f"{EXECUTIONS}/{accepted['execution_id']}"
    async with asyncio.timeout(HANG_GUARD):
        while True:
            got = await api.client.get(f"{EXECUTIONS}/{accepted['execution_id']}", headers=alice)
            if got.json()["status"] not in ("queued", "running"):
                break
            await asyncio.sleep(0.05)
    assert got.json()["status"] == "completed"


async def test_an_idempotency_key_replays_the_first_run(api: Api, alice: Headers) -> None:
    flow_id = await _flow(api, alice, STEPS)
    key = {"Idempotency-Key": "order-42"}
    first = await api.client.post(RUN.format(flow_id), json={}, headers={**alice, **key})
    again = await api.client.post(RUN.format(flow_id), json={}, headers={**alice, **key})
    assert first.json()["execution_id"] == again.json()["execution_id"]
    assert again.headers["idempotent-replayed"] == "true"
    listed = await api.client.get(EXECUTIONS, params={"flow_id": flow_id}, headers=alice)
    assert len(listed.json()["items"]) == 1


async def test_an_idempotency_key_reused_for_another_request_is_a_conflict(
    api: Api, alice: Headers
) -> None:
    flow_id = await _flow(api, alice, STEPS)
    other_flow = await _flow(api, alice, STEPS)
    key = {"Idempotency-Key": "order-43"}
    first = await api.client.post(
        RUN.format(flow_id), json={"input": {"n": 1}}, headers={**alice, **key}
    )
    assert first.status_code == 202
    for url, body in [
        (RUN.format(flow_id), {"input": {"n": 2}}),
        (RUN.format(flow_id), {"input": {"n": 1}, "version": 2}),
        (RUN.format(other_flow), {"input": {"n": 1}}),
    ]:
        response = await api.client.post(url, json=body, headers={**alice, **key})
        assert response.status_code == 409, (body, response.text)
        assert "Idempotency-Key" in error_of(response)["message"]
    same = await api.client.post(
        RUN.format(flow_id), json={"input": {"n": 1}, "version": 1}, headers={**alice, **key}
    )
    assert same.json()["execution_id"] == first.json()["execution_id"]
    listed = await api.client.get(EXECUTIONS, headers=alice)
    assert len(listed.json()["items"]) == 1


async def test_bad_requests_start_nothing(api: Api, alice: Headers, bob: Headers) -> None:
    flow_id = await _flow(api, alice, STEPS)
    cases = [
        (RUN.format(flow_id), {"input": [1, 2]}, alice, 400),
        (RUN.format(flow_id), {"input": None}, alice, 400),
        (RUN.format(flow_id), {"input": {}, "version": 9}, alice, 404),
        (RUN.format("nope"), {"input": {}}, alice, 404),
        (RUN.format(flow_id), {"input": {}}, bob, 404),
        (RUN.format(flow_id) + "?wait=soon", {"input": {}}, alice, 400),
    ]
    for url, body, who, status in cases:
        response = await api.client.post(url, json=body, headers=who)
        assert response.status_code == status, (body, response.text)
        error_of(response)
    too_big = await api.client.post(
        RUN.format(flow_id), json={"input": {"x": "y" * 70_000}}, headers=alice
    )
    assert too_big.status_code == 413
    listed = await api.client.get(EXECUTIONS, headers=alice)
    assert listed.json()["items"] == []


async def test_a_failed_run_reports_the_failing_node(api: Api, alice: Headers) -> None:
    flow_id = await _flow(api, alice, FAILING)
    response = await api.client.post(RUN.format(flow_id) + WAIT, json={}, headers=alice)
    body = response.json()
    assert body["status"] == "failed"
    assert body["error"]["node_id"] == "boom"
    assert body["error"]["message"] == "node 'boom' failed: no luck"
    assert body["error"]["code"] == "flow_failed"


async def test_cancel_stops_a_run_and_a_second_cancel_conflicts(api: Api, alice: Headers) -> None:
    flow_id = await _flow(api, alice, SLOW)
    # Under the durable-wait threshold (30 s): the nap sleeps in memory, a node running now
    # (a longer one would wait durably: tests/e2e/test_waiting.py cancels such a run).
    started = await api.client.post(RUN.format(flow_id), json={"input": {"nap": 25}}, headers=alice)
    execution_id = started.json()["execution_id"]
    async with asyncio.timeout(HANG_GUARD):
        while True:
            running = await api.client.get(f"{EXECUTIONS}/{execution_id}", headers=alice)
            if running.json()["current_node"] == "nap":
                break
            await asyncio.sleep(0.02)
    assert running.json()["status"] == "running"
    assert running.json()["current_node"] == "nap"
    canceled = await api.client.post(f"{EXECUTIONS}/{execution_id}/cancel", headers=alice)
    assert canceled.status_code == 200
    assert canceled.json()["status"] == "canceled"
    assert canceled.json()["current_node"] is None
    assert canceled.json()["progress"] == running.json()["progress"]
    again = await api.client.post(f"{EXECUTIONS}/{execution_id}/cancel", headers=alice)
    assert again.status_code == 409
    assert error_of(again)["code"] == "conflict"


async def test_retry_and_resume_start_new_runs(api: Api, alice: Headers) -> None:
    flow_id = await _flow(api, alice, FAILING)
    failed = await api.client.post(RUN.format(flow_id) + WAIT, json={}, headers=alice)
    failed_id = failed.json()["id"]
    retried = await api.client.post(f"{EXECUTIONS}/{failed_id}/retry", headers=alice)
    assert retried.status_code == 202
    assert retried.json()["execution_id"] != failed_id
    resumed = await api.client.post(
        f"{EXECUTIONS}/{failed_id}/retry", json={"resume": True}, headers=alice
    )
    assert resumed.status_code == 202


async def test_logs_and_listing_filters(api: Api, alice: Headers) -> None:
    flow_id = await _flow(api, alice, STEPS)
    done = await api.client.post(
        RUN.format(flow_id) + WAIT,
        json={"input": {"name": "Ada"}},
        headers=alice,
    )
    execution_id = done.json()["id"]
    logs = await api.client.get(f"{EXECUTIONS}/{execution_id}/logs", headers=alice)
    assert [e["data"]["message"] for e in logs.json()["items"]] == ["hi Ada"]
    by_node = await api.client.get(
        f"{EXECUTIONS}/{execution_id}/logs", params={"node_id": "greet"}, headers=alice
    )
    assert by_node.json()["items"] == []
    completed = await api.client.get(
        EXECUTIONS, params={"status": "completed", "flow_id": flow_id}, headers=alice
    )
    assert [e["id"] for e in completed.json()["items"]] == [execution_id]
    failed = await api.client.get(EXECUTIONS, params={"status": "failed"}, headers=alice)
    assert failed.json()["items"] == []


async def test_another_account_sees_no_runs_of_mine(api: Api, alice: Headers, bob: Headers) -> None:
    flow_id = await _flow(api, alice, STEPS)
    done = await api.client.post(RUN.format(flow_id) + WAIT, json={}, headers=alice)
    execution_id = done.json()["id"]
    for path in ("", "/logs", "/events"):
        response = await api.client.get(f"{EXECUTIONS}/{execution_id}{path}", headers=bob)
        assert response.status_code == 404, path
    cancel = await api.client.post(f"{EXECUTIONS}/{execution_id}/cancel", headers=bob)
    assert cancel.status_code == 404
    assert (await api.client.get(EXECUTIONS, headers=bob)).json()["items"] == []


async def test_sse_replays_a_finished_run_and_resumes_after_last_event_id(
    api: Api, alice: Headers
) -> None:
    flow_id = await _flow(api, alice, STEPS)
    done = await api.client.post(RUN.format(flow_id) + WAIT, json={}, headers=alice)
    execution_id = done.json()["id"]
    response = await api.client.get(f"{EXECUTIONS}/{execution_id}/events", headers=alice)
    assert response.headers["content-type"].startswith("text/event-stream")
    frames = [f for f in response.text.split("\n\n") if f]
    ids = [int(f.split("\n")[0].removeprefix("id: ")) for f in frames]
    assert ids == list(range(1, len(frames) + 1))
    last = json.loads(frames[-1].split("data: ", 1)[1])
    assert last["type"] == "complete"
    resumed = await api.client.get(
        f"{EXECUTIONS}/{execution_id}/events", headers={**alice, "Last-Event-ID": str(ids[-3])}
    )
    again = [f for f in resumed.text.split("\n\n") if f]
    assert [int(f.split("\n")[0].removeprefix("id: ")) for f in again] == ids[-2:]


async def resume_five_at_once(api: Api, who: Headers, flow_id: str) -> None:
    """Five concurrent resumes of one failed run start one run: every answer is that run
    (202) or, if it already ended, a 409 naming it. A later resume of the old run is a 409."""
    failed = await api.client.post(RUN.format(flow_id) + "?wait=5s", json={}, headers=who)
    assert failed.json()["status"] == "failed", failed.text
    failed_id = failed.json()["id"]
    answers = await asyncio.gather(
        *(
            api.client.post(f"{EXECUTIONS}/{failed_id}/retry", json={"resume": True}, headers=who)
            for _ in range(5)
        )
    )
    runs = await api.client.get(EXECUTIONS, params={"flow_id": flow_id}, headers=who)
    ids = {e["id"] for e in runs.json()["items"]}
    assert len(ids) == 2, ids  # the failed run and its one resume
    (resumed_id,) = ids - {failed_id}
    for answer in answers:
        if answer.status_code == 202:
            assert answer.json()["execution_id"] == resumed_id
        else:
            assert answer.status_code == 409, answer.text
            assert resumed_id in error_of(answer)["message"]
    assert sum(a.status_code == 202 for a in answers) >= 1
    for _ in range(500):  # a hang guard, not a time limit
        done = await api.client.get(f"{EXECUTIONS}/{resumed_id}", headers=who)
        if done.json()["status"] == "failed":
            break
        await asyncio.sleep(0.02)
    assert done.json()["status"] == "failed"
    again = await api.client.post(
        f"{EXECUTIONS}/{failed_id}/retry", json={"resume": True}, headers=who
    )
    assert again.status_code == 409
    assert resumed_id in error_of(again)["message"]
    # The newer run can be resumed in turn.
    onward = await api.client.post(
        f"{EXECUTIONS}/{resumed_id}/retry", json={"resume": True}, headers=who
    )
    assert onward.status_code == 202


async def test_concurrent_resumes_of_one_failed_run_start_one_run(api: Api, alice: Headers) -> None:
    await resume_five_at_once(api, alice, await _flow(api, alice, FAILING))


SCALAR = """metadata: {name: Scalar}
nodes:
  answer: {type: transform, params: {script: "return input.value"}}
"""


async def test_a_run_whose_output_is_any_json_value_completes_and_reads_back(
    api: Api, alice: Headers
) -> None:
    """A bare number used to be stored as a number by SQLite and crash the runner on read,
    which recovery then resumed forever; a lone surrogate could not be stored at all. (A NUL
    is refused at the API edge; one a script makes is stored: tests/api/test_input_guard.py.)"""
    flow_id = await _flow(api, alice, SCALAR)
    for value in (42, 1.5, 0, True, "42", "", "\U0001f600", None):
        body = json.dumps({"input": {"value": value}})  # \\ud800 goes over the wire escaped
        done = await api.client.post(
            RUN.format(flow_id) + "?wait=10s",
            content=body,
            headers={**alice, "content-type": "application/json"},
        )
        assert done.status_code == 200, done.text
        assert done.json()["status"] == "completed", done.text
        again = await api.client.get(f"{EXECUTIONS}/{done.json()['id']}", headers=alice)
        assert again.status_code == 200, again.text
        assert again.json()["output"] == value
        assert again.json()["input"] == {"value": value}


LONE_SURROGATE = """metadata: {name: Surrogate}
nodes:
  odd: {type: transform, params: {script: 'return {text: "a\\ud800b", ok: "\\ud83d\\ude00"}'}}
"""


async def test_lone_surrogates_become_the_replacement_character_in_outputs_and_are_refused_in_input(
    api: Api, alice: Headers
) -> None:
    """A JavaScript string may hold a lone surrogate; what the run records is valid Unicode
    (U+FFFD in its place), so every response, event and webhook can carry it. An input that
    holds one is a 400, not a run that fails later or a response that cannot be encoded."""
    flow_id = await _flow(api, alice, LONE_SURROGATE)
    done = await api.client.post(RUN.format(flow_id) + "?wait=10s", json={}, headers=alice)
    assert done.status_code == 200, done.text
    assert done.json()["output"] == {"text": "a\ufffdb", "ok": "\U0001f600"}
    again = await api.client.get(f"{EXECUTIONS}/{done.json()['id']}", headers=alice)
    assert again.status_code == 200, again.text
    assert again.json()["output"]["text"] == "a\ufffdb"
    history = await api.client.get(f"{EXECUTIONS}/{done.json()['id']}/events", headers=alice)
    assert history.status_code == 200
    last = [line for line in history.text.splitlines() if line.startswith("data: ")][-1]
    assert json.loads(last.removeprefix("data: "))["data"]["output"]["text"] == "a\ufffdb"
    refused = await api.client.post(
        RUN.format(flow_id),
        content='{"input": {"s": "x\\udc00"}}',
        headers={**alice, "content-type": "application/json"},
    )
    assert refused.status_code == 400, refused.text
    assert error_of(refused)["code"] == "invalid_input"
