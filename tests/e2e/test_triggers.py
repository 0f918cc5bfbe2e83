"""Inbound webhook triggers through a real ``flowrunner serve``: every signature scheme
accepts a signed request and refuses a wrong signature, a stale timestamp and a missing
header (401, no run, audited); delivery ids deduplicate; sync and async answers; limits."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from tests.e2e.leaks import database_bytes, leaks
from tests.e2e.server import Server, create_flow
from tests.executions.conftest import eventually

pytestmark = pytest.mark.slow

STANDARD_KEY = "whsec_" + base64.b64encode(b"k" * 24).decode()
PLAIN_KEY = "plain-shared-key-1"
BODY = b'{"id": "evt_1", "order": 42}'

ECHO = """metadata: {name: Hook echo %(tag)s}
triggers:
  - webhook: %(webhook)s
nodes:
  echo:
    type: set
    params: {values: {got: "${input.body}", method: "${input.method}"}}
"""


async def _secret(client: httpx.AsyncClient, key: str, value: str) -> None:
    saved = await client.post("/api/v1/accounts/me/secrets", json={"key": key, "value": value})
    assert saved.status_code in (200, 201), saved.text


async def _hook_flow(client: httpx.AsyncClient, tag: str, webhook: str) -> tuple[str, str]:
    """A flow with one webhook trigger: (flow id, hook path)."""
    flow_id = await create_flow(client, ECHO % {"tag": tag, "webhook": webhook})
    listed = await client.get("/api/v1/triggers", params={"flow_id": flow_id})
    assert listed.status_code == 200, listed.text
    (trigger,) = listed.json()["items"]
    assert trigger["kind"] == "webhook"
    assert trigger["source"] == "flow"
    return flow_id, trigger["url"]


async def _runs(client: httpx.AsyncClient, flow_id: str) -> list[dict[str, Any]]:
    page = await client.get("/api/v1/executions", params={"flow_id": flow_id})
    assert page.status_code == 200, page.text
    items: list[dict[str, Any]] = page.json()["items"]
    return items


def _hex(key: str, data: bytes, algorithm: Callable[..., Any] = hashlib.sha256) -> str:
    return hmac.new(key.encode(), data, algorithm).hexdigest()


def _standard(ts: int, body: bytes, msg_id: str = "msg_1") -> dict[str, str]:
    signature = Webhook(STANDARD_KEY).sign(msg_id, datetime.fromtimestamp(ts, UTC), body)
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": signature}


def _github(ts: int, body: bytes) -> dict[str, str]:
    return {"X-Hub-Signature-256": "sha256=" + _hex(PLAIN_KEY, body),
            "X-GitHub-Delivery": f"gh-{ts}"}  # fmt: skip


def _stripe(ts: int, body: bytes) -> dict[str, str]:
    return {"Stripe-Signature": f"t={ts},v1={_hex(PLAIN_KEY, f'{ts}.'.encode() + body)}"}


def _slack(ts: int, body: bytes) -> dict[str, str]:
    signed = f"v0:{ts}:".encode() + body
    return {
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": "v0=" + _hex(PLAIN_KEY, signed),
    }


def _hmac(ts: int, body: bytes) -> dict[str, str]:
    digest = hmac.new(PLAIN_KEY.encode(), f"{ts}.".encode() + body, hashlib.sha512).digest()
    return {"X-Sig": "sha512=" + base64.b64encode(digest).decode(), "X-Ts": str(ts)}


def _token(ts: int, body: bytes) -> dict[str, str]:
    return {"X-Hook-Token": PLAIN_KEY}


# scheme -> (verify config, key, signer, the header whose absence must be refused, timestamped)
SCHEMES: dict[str, tuple[str, str, Callable[[int, bytes], dict[str, str]], str, bool]] = {
    "standard": ("{scheme: standard, secret: STD_KEY}", STANDARD_KEY, _standard,
                 "webhook-signature", True),
    "github": ("{scheme: github, secret: PLAIN}", PLAIN_KEY, _github, "X-Hub-Signature-256",
               False),
    "stripe": ("{scheme: stripe, secret: PLAIN, tolerance: 5m}", PLAIN_KEY, _stripe,
               "Stripe-Signature", True),
    "slack": ("{scheme: slack, secret: PLAIN}", PLAIN_KEY, _slack, "X-Slack-Signature", True),
    "hmac": ("{scheme: hmac, secret: PLAIN, header: X-Sig, algorithm: sha512, encoding: base64,"
             " prefix: 'sha512=', timestamp_header: X-Ts}", PLAIN_KEY, _hmac, "X-Sig", True),
    "token": ("{scheme: token, secret: PLAIN, header: X-Hook-Token}", PLAIN_KEY, _token,
              "X-Hook-Token", False),
}  # fmt: skip


def _tamper(headers: dict[str, str], name: str) -> dict[str, str]:
    """The same headers with the signature (``name``) changed in its last characters."""
    value = headers[name]
    flipped = value[:-2] + ("AA" if not value.endswith("AA") else "BB")
    return {**headers, name: flipped}


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
async def test_each_scheme_accepts_a_signed_request_and_refuses_forgeries_without_a_run(
    client: httpx.AsyncClient, server: Server, scheme: str
) -> None:
    verify, key, sign, header, timestamped = SCHEMES[scheme]
    await _secret(client, "STD_KEY" if scheme == "standard" else "PLAIN", key)
    flow_id, url = await _hook_flow(client, scheme, f"{{verify: {verify}}}")
    now = int(time.time())
    json_type = {"content-type": "application/json"}

    ok = await client.post(url, content=BODY, headers={**sign(now, BODY), **json_type})
    assert ok.status_code == 202, ok.text
    execution_id = ok.json()["execution_id"]

    forged = {**_tamper(sign(now, BODY), header), **json_type}
    missing = {k: v for k, v in sign(now, BODY).items() if k != header} | json_type
    refused = [
        await client.post(url, content=BODY, headers=forged),
        await client.post(url, content=BODY, headers=missing),
    ]
    if scheme != "token":  # a token does not sign the body: a changed body is refused
        changed = {**sign(now, BODY), **json_type}
        refused.append(await client.post(url, content=BODY + b" ", headers=changed))
    if timestamped:
        stale = now - 3600
        refused.append(
            await client.post(url, content=BODY, headers={**sign(stale, BODY), **json_type})
        )
    for answer in refused:
        assert answer.status_code == 401, answer.text
        assert answer.json()["error"]["code"] == "unauthenticated"

    runs = await _runs(client, flow_id)
    assert [r["id"] for r in runs] == [execution_id]  # the refused requests started nothing
    stored = (await client.get(f"/api/v1/executions/{execution_id}")).json()["input"]
    assert stored["body"] == {"id": "evt_1", "order": 42}
    if scheme == "token":  # the token is a credential: never stored with the run
        assert "x-hook-token" not in stored["headers"]
        assert PLAIN_KEY not in json.dumps(stored)
        # Nor anywhere in the database: the vault holds it encrypted, audits hold reasons.
        assert leaks(database_bytes(server), PLAIN_KEY) == []
        assert leaks(server.log.read_bytes(), PLAIN_KEY) == []
    audit = (await client.get("/api/v1/audit", params={"limit": 200})).json()["items"]
    failures = [a for a in audit if a["action"] == "trigger.verification_failed"
                and a["target"] == url.rsplit("/", 1)[1]]  # fmt: skip
    assert len(failures) == len(refused)
    reasons = {a["data"]["reason"] for a in failures}
    assert f"missing header {header.lower()}" in reasons
    if timestamped:
        assert any("tolerance" in r for r in reasons)


async def test_a_redelivered_webhook_starts_one_run(client: httpx.AsyncClient) -> None:
    await _secret(client, "STD_KEY", STANDARD_KEY)
    flow_id, url = await _hook_flow(
        client, "redelivery", "{verify: {scheme: standard, secret: STD_KEY}}"
    )
    first = await client.post(url, content=BODY, headers=_standard(int(time.time()), BODY, "msg_x"))
    # The sender retries later: same webhook-id, a new timestamp and signature.
    again = await client.post(
        url, content=BODY, headers=_standard(int(time.time()) + 1, BODY, "msg_x")
    )
    assert first.status_code == again.status_code == 202, again.text
    assert first.json()["execution_id"] == again.json()["execution_id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    other = await client.post(url, content=BODY, headers=_standard(int(time.time()), BODY, "msg_y"))
    assert other.json()["execution_id"] != first.json()["execution_id"]
    assert len(await _runs(client, flow_id)) == 2


async def test_async_mode_answers_202_and_the_run_gets_body_headers_query_method_path(
    client: httpx.AsyncClient,
) -> None:
    _flow_id, url = await _hook_flow(client, "async", "{methods: [POST, PUT]}")
    answer = await client.put(
        url, params={"page": "2", "tag": ["a", "b"]}, data={"name": "ada"},
        headers={"X-Custom": "yes", "Authorization": "Bearer never-stored"},
    )  # fmt: skip
    assert answer.status_code == 202, answer.text
    execution_id = answer.json()["execution_id"]

    async def done() -> bool:
        run = (await client.get(f"/api/v1/executions/{execution_id}")).json()
        return bool(run["status"] == "completed")

    await eventually(done, "the hook's run completes")
    run = (await client.get(f"/api/v1/executions/{execution_id}")).json()
    given = run["input"]
    assert given["body"] == {"name": "ada"}
    assert given["query"] == {"page": "2", "tag": ["a", "b"]}
    assert given["method"] == "PUT"
    assert given["path"] == url
    assert given["headers"]["x-custom"] == "yes"
    assert "authorization" not in given["headers"]  # credentials are never stored
    assert run["output"] == {"got": {"name": "ada"}, "method": "PUT"}
    refused = await client.get(url)
    assert refused.status_code == 405
    assert refused.headers["Allow"] == "POST, PUT"


RESPOND = """metadata: {name: Hook API}
triggers:
  - webhook: {response: sync, timeout: 20s}
nodes:
  double:
    type: set
    params: {values: {doubled: "${input.body.n * 2}"}}
    next: {default: answer}
  answer:
    type: respond
    params:
      status: 201
      headers: {X-Answer: computed}
      body: {result: "${input.doubled}"}
"""


async def test_sync_mode_answers_with_the_respond_node(client: httpx.AsyncClient) -> None:
    flow_id = await create_flow(client, RESPOND)
    (trigger,) = (await client.get("/api/v1/triggers", params={"flow_id": flow_id})).json()["items"]
    answer = await client.post(trigger["url"], json={"n": 21})
    assert answer.status_code == 201, answer.text
    assert answer.headers["X-Answer"] == "computed"
    assert answer.json() == {"result": 42}
    assert answer.headers["X-Flowrunner-Execution-Id"]


async def test_sync_mode_answers_with_the_flow_output(client: httpx.AsyncClient) -> None:
    _flow_id, url = await _hook_flow(client, "sync", "{response: sync}")
    answer = await client.post(url, json={"a": 1})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"got": {"a": 1}, "method": "POST"}


async def test_disabled_trigger_is_not_found_until_enabled(client: httpx.AsyncClient) -> None:
    flow_id, url = await _hook_flow(client, "switch", "{}")
    trigger_id = url.rsplit("/", 1)[1]
    off = await client.post(f"/api/v1/triggers/{trigger_id}/disable")
    assert off.status_code == 200
    assert off.json()["enabled"] is False
    assert (await client.post(url, json={})).status_code == 404
    # Saving the flow again keeps the trigger's id (its URL) and its switch.
    yaml = ECHO % {"tag": "switch", "webhook": "{}"}
    saved = await client.put(f"/api/v1/flows/{flow_id}", content=yaml,
                             headers={"content-type": "application/yaml"})  # fmt: skip
    assert saved.status_code == 200, saved.text
    (again,) = (await client.get("/api/v1/triggers", params={"flow_id": flow_id})).json()["items"]
    assert again["id"] == trigger_id
    assert again["enabled"] is False
    on = await client.post(f"/api/v1/triggers/{trigger_id}/enable")
    assert on.json()["enabled"] is True
    assert (await client.post(url, json={})).status_code == 202


async def test_a_rotated_or_deleted_verification_secret_counts_from_the_next_request(
    client: httpx.AsyncClient,
) -> None:
    """The hook route caches a trigger with its key: a change through the API is seen at
    once, not when the cached entry expires."""
    await _secret(client, "ROTATING", "first-shared-key-1")
    _, url = await _hook_flow(
        client, "rotate", "{verify: {scheme: token, secret: ROTATING, header: X-Hook-Token}}"
    )

    async def status(key: str) -> int:
        return (await client.post(url, json={}, headers={"X-Hook-Token": key})).status_code

    assert await status("first-shared-key-1") == 202  # the trigger and its key now cached
    rotated = await client.put(
        "/api/v1/accounts/me/secrets/ROTATING", json={"value": "second-shared-key-2"}
    )
    assert rotated.status_code == 200, rotated.text
    assert await status("first-shared-key-1") == 401
    assert await status("second-shared-key-2") == 202
    deleted = await client.delete("/api/v1/accounts/me/secrets/ROTATING")
    assert deleted.status_code == 204
    assert await status("second-shared-key-2") == 401


async def test_rate_limit_body_size_and_content_type_are_enforced(
    client: httpx.AsyncClient,
) -> None:
    flow_id, url = await _hook_flow(
        client, "limits", "{rate_limit: 3, max_body: 64, content_types: [application/json]}"
    )
    assert (
        await client.post(url, content=b"x" * 65, headers={"content-type": "application/json"})
    ).status_code == 413
    assert (
        await client.post(url, content=b"hi", headers={"content-type": "text/plain"})
    ).status_code == 415
    # The two refusals above counted against the limit of 3 a minute: one more goes through.
    assert (await client.post(url, json={})).status_code == 202
    limited = await client.post(url, json={})
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert len(await _runs(client, flow_id)) == 1


async def test_triggers_over_the_api_and_a_malformed_body(client: httpx.AsyncClient) -> None:
    flow_id = await create_flow(
        client, "metadata: {name: plain}\nnodes:\n  a: {type: log, params: {message: hi}}\n"
    )
    bad = await client.post(
        "/api/v1/triggers", json={"flow_id": flow_id, "schedule": {"cron": "61 * * * *"}}
    )
    assert bad.status_code == 400
    assert "cron" in bad.json()["error"]["message"]
    made = await client.post(
        "/api/v1/triggers", json={"flow_id": flow_id, "webhook": {"name": "api"}}
    )
    assert made.status_code == 201, made.text
    url = made.json()["url"]
    broken = await client.post(
        url, content=b"{not json", headers={"content-type": "application/json"}
    )
    assert broken.status_code == 400
    assert "not JSON" in broken.json()["error"]["message"]
    trigger_id = made.json()["id"]
    assert (await client.delete(f"/api/v1/triggers/{trigger_id}")).status_code == 204
    assert (await client.post(url, json={})).status_code == 404
    assert await _runs(client, flow_id) == []


CRON_NODE = """metadata: {name: Original cron}
nodes:
  every_monday:
    type: cron
    params: {schedule: "0 9 * * 1", timezone: Europe/Berlin}
    next: {default: hello}
  hello: {type: log, params: {message: monday}}
"""


async def test_the_original_cron_node_declares_a_schedule(client: httpx.AsyncClient) -> None:
    flow_id = await create_flow(client, CRON_NODE)
    (trigger,) = (await client.get("/api/v1/triggers", params={"flow_id": flow_id})).json()["items"]
    assert trigger["kind"] == "schedule"
    assert trigger["config"]["cron"] == "0 9 * * 1"
    assert trigger["config"]["timezone"] == "Europe/Berlin"
    # Deleting the flow deletes its triggers.
    assert (await client.delete(f"/api/v1/flows/{flow_id}")).status_code == 204
    assert (await client.get(f"/api/v1/triggers/{trigger['id']}")).status_code == 404


FAILING = """metadata: {name: Hook fails}
triggers:
  - webhook: {response: sync}
nodes:
  boom: {type: fail, params: {message: no}}
"""
SLOW = """metadata: {name: Hook slow}
triggers:
  - webhook: {response: sync, timeout: 1s}
nodes:
  nap: {type: delay, params: {duration: 30s}}
"""


async def test_sync_mode_reports_a_failed_run_and_a_run_outliving_its_timeout(
    client: httpx.AsyncClient,
) -> None:
    flow_id = await create_flow(client, FAILING)
    (failing,) = (await client.get("/api/v1/triggers", params={"flow_id": flow_id})).json()["items"]
    failed = await client.post(failing["url"], json={})
    assert failed.status_code == 500
    assert failed.json()["error"]["code"] == "run_failed"
    assert failed.json()["error"]["execution_id"] == failed.headers["X-Flowrunner-Execution-Id"]

    flow_id = await create_flow(client, SLOW)
    (slow,) = (await client.get("/api/v1/triggers", params={"flow_id": flow_id})).json()["items"]
    pending = await client.post(slow["url"], json={})
    assert pending.status_code == 202  # the answer of async mode; the run goes on
    execution_id = pending.json()["execution_id"]
    assert pending.json()["status"] in ("queued", "running")
    assert (await client.post(f"/api/v1/executions/{execution_id}/cancel")).status_code in (
        200,
        202,
    )


async def test_repeated_failed_verifications_lock_the_address_out(
    client: httpx.AsyncClient,
) -> None:
    await _secret(client, "PLAIN", PLAIN_KEY)
    flow_id, url = await _hook_flow(client, "lockout", "{verify: {scheme: github, secret: PLAIN}}")
    wrong = {"X-Hub-Signature-256": "sha256=" + "0" * 64}
    answers = [(await client.post(url, content=BODY, headers=wrong)).status_code for _ in range(11)]
    assert answers == [401] * 10 + [429]
    # Locked out for the rest of the minute, even with a good signature: nothing is checked.
    signed = await client.post(url, content=BODY, headers=_github(1, BODY))
    assert signed.status_code == 429
    assert int(signed.headers["Retry-After"]) >= 1
    assert await _runs(client, flow_id) == []
