"""The audit log over HTTP: what is recorded, who may read it, and that the chain verifies."""

from __future__ import annotations

import itertools

from tests.api.helpers import Api, Headers, flow_yaml


async def test_flow_token_secret_and_login_events_are_in_the_callers_log(
    api: Api, alice: Headers
) -> None:
    flow = await api.create_flow(alice)
    url = f"/api/v1/flows/{flow['id']}"
    await api.client.put(url, json={"content": flow_yaml(value="2")}, headers=alice)
    await api.client.post(f"{url}/versions/1/restore", headers=alice)
    await api.client.delete(url, headers=alice)
    await api.client.put("/api/v1/accounts/me/secrets/K", json={"value": "v"}, headers=alice)
    await api.client.get("/api/v1/accounts/me/secrets/K", headers=alice)
    token = (await api.client.post("/api/v1/tokens", json={"name": "t"}, headers=alice)).json()
    await api.client.delete(f"/api/v1/tokens/{token['id']}", headers=alice)

    page = (await api.client.get("/api/v1/audit", params={"limit": 100}, headers=alice)).json()
    actions = [r["action"] for r in reversed(page["items"])]
    assert actions == [
        "account.created",
        "auth.login",
        "flow.created",
        "flow.updated",
        "flow.restored",
        "flow.deleted",
        "secret.created",
        "secret.read",
        "token.created",
        "token.revoked",
    ]
    assert "v" not in [r["data"].get("value") for r in page["items"]]


async def test_admins_read_the_whole_chain_and_it_verifies(
    api: Api, admin: Headers, alice: Headers, bob: Headers
) -> None:
    await api.client.post("/api/v1/login", json={"username": "bob", "password": "wrong-pass"})
    everything = (
        await api.client.get("/api/v1/audit", params={"scope": "all", "limit": 1000}, headers=admin)
    ).json()
    records = everything["items"]
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(records))
    failed = [r for r in records if r["action"] == "auth.login" and r["data"]["outcome"] != "ok"]
    assert failed[-1]["target"] == "bob"
    report = await api.app.state.services.audit.verify()
    assert report.ok
    assert report.checked == len(records)
