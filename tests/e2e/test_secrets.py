"""Through a real server: no secret reaches the database, the log or an API answer in any
form, and a WebSocket closes once its credentials stop working."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tests.e2e.leaks import database_bytes, leaks
from tests.e2e.server import Server

pytestmark = pytest.mark.slow

# Quotes, a backslash, spaces and URL-special characters: every escaping changes it.
SECRET = 'Tr0ub4dor"&\\3 horse/battery+staple?x=1'
SHORT = "ok"

# One node per way a secret used to slip past the masker, then a pause (the database is
# checked while the run is in progress) and an error edge whose error quotes the secret.
LEAKS = r"""metadata: {name: Leaks}
nodes:
  keep:
    type: set
    params: {values: {token: "${secrets.S}", short: "${secrets.SHORT}"}}
    next: {default: encode}
  encode:
    type: transform
    params:
      script: |
        const b64 = (s, safe) => {
          const t = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
            + (safe ? '-_' : '+/');
          let o = '';
          for (let i = 0; i < s.length; i += 3) {
            const n = (s.charCodeAt(i) << 16) | ((s.charCodeAt(i + 1) || 0) << 8)
              | (s.charCodeAt(i + 2) || 0);
            o += t[(n >> 18) & 63] + t[(n >> 12) & 63]
              + (i + 1 < s.length ? t[(n >> 6) & 63] : '=')
              + (i + 2 < s.length ? t[n & 63] : '=');
          }
          return o;
        };
        const s = secrets.S;
        console.log('as json ' + JSON.stringify({p: s}));
        return {
          [s]: 1,
          escaped: JSON.stringify({p: s}),
          twice: JSON.stringify(JSON.stringify({p: s})),
          url: 'https://x.test/?q=' + encodeURIComponent(s),
          plus: encodeURIComponent(s).replace(/%20/g, '+'),
          b64: [b64(s), b64('u:' + s), b64('us:' + s + '!'), b64('x' + s + '!!', true)],
          hex: Array.from(s).map(c => c.charCodeAt(0).toString(16).padStart(2, '0')).join(''),
        };
    next: {default: decide}
  decide:
    type: condition
    params: {condition_script: "return secrets.S"}
    next: {default: hooked}
  hooked:
    type: log
    params: {message: "hook ran"}
    hooks: {post: "return secrets.S"}
    next: {default: pick}
  pick:
    type: switch
    params: {value: "${secrets.S}", cases: {a: b}, default: "${secrets.S}"}
    next: {default: nap}
  nap: {type: delay, params: {duration: 2s}, next: {default: boom}}
  boom:
    type: fail
    params: {message: "bad ${secrets.S}, all ok"}
    next: {error: handled}
  handled: {type: log, params: {message: "handled: ${error.message}"}}
"""


@pytest.fixture(scope="module")
def secure_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with Server(tmp_path_factory.mktemp("secrets"), ws_auth_recheck_seconds=0.5) as running:
        yield running


@pytest.fixture
async def admin(secure_server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with secure_server.client() as client:
        yield client


async def _frames_until(ws: Any, done: Any, seen: list[str]) -> None:
    async with asyncio.timeout(60):  # hang guard only
        while True:
            text = await ws.recv()
            seen.append(text)
            if done(json.loads(text)):
                return


def _final(message: dict[str, Any]) -> bool:
    return message.get("data", {}).get("status") in ("completed", "failed", "canceled")


async def test_no_secret_or_encoding_of_it_reaches_the_database_the_log_or_the_api(
    secure_server: Server, admin: httpx.AsyncClient
) -> None:
    answers: list[str] = []
    for key, value in (("S", SECRET), ("SHORT", SHORT)):
        saved = await admin.post("/api/v1/accounts/me/secrets", json={"key": key, "value": value})
        assert saved.status_code == 201, saved.text
        answers.append(saved.text)
        assert bool(saved.json()["warnings"]) is (key == "SHORT")
    created = await admin.post(
        "/api/v1/flows", content=LEAKS, headers={"content-type": "application/yaml"}
    )
    assert created.status_code == 201, created.text
    flow_id = created.json()["id"]
    token = admin.headers["Authorization"].removeprefix("Bearer ")
    frames: list[str] = []
    # ?token= in the URL: the way browsers authenticate, and what the access log prints.
    async with websockets.connect(f"{secure_server.ws_url}?token={token}") as ws:
        await ws.send(json.dumps({"type": "subscribe", "flow_id": flow_id}))
        started = await admin.post(f"/api/v1/flows/{flow_id}/run", json={"input": {}})
        assert started.status_code == 202, started.text
        execution_id = started.json()["execution_id"]

        def napping(m: dict[str, Any]) -> bool:
            return bool(
                m.get("data", {}).get("node_id") == "nap" and m["data"]["state"] == "started"
            )

        await _frames_until(ws, napping, frames)
        # In progress: the checkpoint before `nap` holds the secret in shared, sealed.
        assert leaks(database_bytes(secure_server), SECRET) == []
        await _frames_until(ws, _final, frames)
    assert json.loads(frames[-1])["data"]["status"] == "completed", frames[-1]
    for path in (
        f"/api/v1/executions/{execution_id}",
        f"/api/v1/executions/{execution_id}/logs",
        "/api/v1/accounts/me/secrets",
    ):
        response = await admin.get(path)
        assert response.status_code == 200, response.text
        answers.append(response.text)

    assert leaks(database_bytes(secure_server), SECRET) == []
    assert leaks(secure_server.log.read_bytes(), SECRET) == []
    assert leaks("\n".join(answers + frames).encode(), SECRET) == []
    # What was masked is still recognisable as masked, and short secrets spare words.
    events = [json.loads(f) for f in frames if '"seq"' in f]
    finished = {e["data"]["node_id"]: e["data"] for e in events if e["data"].get("state")}
    assert finished["keep"]["output"] == {"token": "***", "short": "***"}
    assert finished["encode"]["output"]["***"] == 1
    assert finished["decide"]["action"] == "***"
    assert finished["hooked"]["action"] == "***"
    assert finished["pick"]["action"] == "***"
    assert finished["boom"]["error"]["message"] == "bad ***, all ok"
    logs = [e["data"]["message"] for e in events if e["type"] == "log"]
    assert logs == ['as json {"p":"***"}', "hook ran", "handled: bad ***, all ok"]
    server_log = secure_server.log.read_text()
    assert token not in server_log
    assert "token=***" in server_log
    assert "secret SHORT of account" in server_log


async def _new_account(admin: httpx.AsyncClient, name: str) -> str:
    created = await admin.post(
        "/api/v1/accounts", json={"username": name, "password": "first-password-1"}
    )
    assert created.status_code == 201, created.text
    account_id: str = created.json()["id"]
    return account_id


async def _login(server: Server, name: str, password: str = "first-password-1") -> str:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        response = await client.post("/api/v1/login", json={"username": name, "password": password})
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


async def _close_code(ws: Any) -> int | None:
    """Read until the server closes the socket; its close code."""
    try:
        async with asyncio.timeout(60):  # hang guard only
            while True:
                await ws.recv()
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd is not None else None


async def test_a_websocket_closes_with_4401_when_its_token_is_revoked(
    secure_server: Server, admin: httpx.AsyncClient
) -> None:
    created = await admin.post("/api/v1/tokens", json={"name": "stream"})
    assert created.status_code == 201, created.text
    headers = {"Authorization": f"Bearer {created.json()['token']}"}
    async with websockets.connect(secure_server.ws_url, additional_headers=headers) as ws:
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await ws.recv()) == {"type": "pong"}
        revoked = await admin.delete(f"/api/v1/tokens/{created.json()['id']}")
        assert revoked.status_code == 204
        assert await _close_code(ws) == 4401


async def test_a_websocket_closes_with_4401_when_its_account_is_disabled(
    secure_server: Server, admin: httpx.AsyncClient
) -> None:
    account_id = await _new_account(admin, "streamer")
    token = await _login(secure_server, "streamer")
    async with websockets.connect(f"{secure_server.ws_url}?token={token}") as ws:
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await ws.recv()) == {"type": "pong"}
        disabled = await admin.patch(f"/api/v1/accounts/{account_id}", json={"disabled": True})
        assert disabled.status_code == 200, disabled.text
        assert await _close_code(ws) == 4401


async def test_a_password_change_ends_the_other_login_sessions_and_keeps_api_tokens(
    secure_server: Server, admin: httpx.AsyncClient
) -> None:
    await _new_account(admin, "changer")
    current, other = await _login(secure_server, "changer"), await _login(secure_server, "changer")
    async with httpx.AsyncClient(base_url=secure_server.url, timeout=30) as client:

        def auth(token: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {token}"}

        made = await client.post("/api/v1/tokens", json={"name": "ci"}, headers=auth(current))
        api_token = made.json()["token"]
        async with websockets.connect(f"{secure_server.ws_url}?token={other}") as ws:
            changed = await client.post(
                "/api/v1/accounts/me/password",
                json={"old_password": "first-password-1", "new_password": "second-password-2"},
                headers=auth(current),
            )
            assert changed.status_code == 204, changed.text
            assert await _close_code(ws) == 4401  # the other session's stream ends too
        me = "/api/v1/accounts/me"
        assert (await client.get(me, headers=auth(current))).status_code == 200
        assert (await client.get(me, headers=auth(other))).status_code == 401
        assert (await client.get(me, headers=auth(api_token))).status_code == 200

        # Asked to, the change revokes API tokens as well (still not the caller's own).
        changed = await client.post(
            "/api/v1/accounts/me/password",
            json={
                "old_password": "second-password-2",
                "new_password": "third-password-3",
                "revoke_tokens": True,
            },
            headers=auth(current),
        )
        assert changed.status_code == 204, changed.text
        assert (await client.get(me, headers=auth(api_token))).status_code == 401
        assert (await client.get(me, headers=auth(current))).status_code == 200


# The nap outlasts the kill that follows its start by a wide margin on a loaded machine.
RESUMED = """metadata: {name: Resumed}
nodes:
  keep:
    type: set
    params: {values: {token: "${secrets.S}", wake: "${input.wake}"}}
    next: {default: nap}
  nap: {type: delay, params: {until: "${shared.wake}"}, next: {default: check}}
  check:
    type: switch
    params: {value: "${shared.token === secrets.S}", cases: {"true": same, "false": differ}}
    next: {same: matched, differ: missed}
  matched: {type: set, params: {values: {matched: true}}}
  missed: {type: set, params: {values: {matched: false}}}
"""


async def test_a_run_killed_with_a_secret_in_shared_resumes_from_its_sealed_checkpoint(
    tmp_path: Path,
) -> None:
    server = Server(tmp_path, lease_ttl_seconds=2, recovery_interval_seconds=0.5)
    try:
        server.start()
        async with server.client() as client:
            saved = await client.post(
                "/api/v1/accounts/me/secrets", json={"key": "S", "value": SECRET}
            )
            assert saved.status_code == 201, saved.text
            created = await client.post(
                "/api/v1/flows", content=RESUMED, headers={"content-type": "application/yaml"}
            )
            flow_id = created.json()["id"]
            bearer = {"Authorization": client.headers["Authorization"]}
            async with websockets.connect(server.ws_url, additional_headers=bearer) as ws:
                await ws.send(json.dumps({"type": "subscribe", "flow_id": flow_id}))
                # An absolute wake-up time: far enough for the kill to land mid-nap, and the
                # resumed nap waits only for what is left of it, not for a whole new one.
                wake = (datetime.now(UTC) + timedelta(seconds=10)).isoformat()
                started = await client.post(
                    f"/api/v1/flows/{flow_id}/run", json={"input": {"wake": wake}}
                )
                execution_id = started.json()["execution_id"]

                def napping(m: dict[str, Any]) -> bool:
                    data = m.get("data", {})
                    return bool(data.get("node_id") == "nap" and data.get("state") == "started")

                await _frames_until(ws, napping, [])
        server.kill()  # mid-nap: the checkpoint after `keep` is all that is left
        assert leaks(database_bytes(server), SECRET) == []

        server.start()
        async with server.client() as client:
            async with asyncio.timeout(60):  # hang guard only
                while True:
                    run = (await client.get(f"/api/v1/executions/{execution_id}")).json()
                    if run["status"] in ("completed", "failed", "canceled"):
                        break
                    await asyncio.sleep(0.2)
            assert run["status"] == "completed", run
            # The resumed run opened the sealed checkpoint: the secret reached `check` intact.
            assert run["output"] == {"matched": True}
            # The SSE stream of a finished run is its whole history.
            history = await client.get(f"/api/v1/executions/{execution_id}/events")
            resumed = [f for f in history.text.split("\n\n") if '"resumed":true' in f]
            assert len(resumed) == 1, history.text
            assert '"from_node":"nap"' in resumed[0]
        assert leaks(database_bytes(server), SECRET) == []
    finally:
        server.kill()
