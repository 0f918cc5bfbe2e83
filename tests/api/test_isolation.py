"""Tenant isolation: account B tries every endpoint on account A's ids and learns nothing.

Each attempt must be a 404 (exactly as for an id that does not exist) or a 403 on admin-only
routes, and afterwards A's flow, versions, secret and token are exactly as they were.
"""

from __future__ import annotations

from typing import Any

from tests.api.helpers import YAML_TYPE, Api, Headers, flow_yaml


async def snapshot(api: Api, owner: Headers, flow_id: str, token_id: str) -> dict[str, Any]:
    get = api.client.get
    return {
        "flow": (await get(f"/api/v1/flows/{flow_id}", headers=owner)).json(),
        "versions": (await get(f"/api/v1/flows/{flow_id}/versions", headers=owner)).json(),
        "secrets": (await get("/api/v1/accounts/me/secrets", headers=owner)).json(),
        "token": (await get(f"/api/v1/tokens/{token_id}", headers=owner)).json(),
    }


async def test_another_account_gets_404_on_every_id_and_changes_nothing(
    api: Api, alice: Headers, bob: Headers
) -> None:
    flow = await api.create_flow(alice)
    fid = flow["id"]
    await api.client.put(
        f"/api/v1/flows/{fid}", json={"content": flow_yaml(value="2")}, headers=alice
    )
    await api.client.put(
        "/api/v1/accounts/me/secrets/API_KEY", json={"value": "alice-only"}, headers=alice
    )
    token = (await api.client.post("/api/v1/tokens", json={"name": "a"}, headers=alice)).json()
    alice_id = (await api.client.get("/api/v1/accounts/me", headers=alice)).json()["id"]
    before = await snapshot(api, alice, fid, token["id"])

    yaml = {**bob, **YAML_TYPE}
    attempts: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", f"/api/v1/flows/{fid}", {}),
        ("GET", f"/api/v1/flows/{fid}", {"headers": {**bob, "accept": "application/yaml"}}),
        ("PUT", f"/api/v1/flows/{fid}", {"content": flow_yaml(value="evil"), "headers": yaml}),
        ("PUT", f"/api/v1/flows/{fid}", {"json": {"content": flow_yaml()}}),
        ("PATCH", f"/api/v1/flows/{fid}", {"json": {"tags": ["pwned"]}}),
        ("DELETE", f"/api/v1/flows/{fid}", {}),
        ("GET", f"/api/v1/flows/{fid}/versions", {}),
        ("GET", f"/api/v1/flows/{fid}/versions/1", {}),
        ("GET", f"/api/v1/flows/{fid}/diff?from=1&to=2", {}),
        ("POST", f"/api/v1/flows/{fid}/versions/1/restore", {}),
        ("GET", f"/api/v1/accounts/{alice_id}", {}),
        ("GET", f"/api/v1/accounts/{alice_id}/secrets", {}),
        ("GET", f"/api/v1/accounts/{alice_id}/secrets/API_KEY", {}),
        ("PUT", f"/api/v1/accounts/{alice_id}/secrets/API_KEY", {"json": {"value": "x"}}),
        ("POST", f"/api/v1/accounts/{alice_id}/secrets", {"json": {"key": "K", "value": "x"}}),
        ("DELETE", f"/api/v1/accounts/{alice_id}/secrets/API_KEY", {}),
        ("GET", f"/api/v1/tokens/{token['id']}", {}),
        ("DELETE", f"/api/v1/tokens/{token['id']}", {}),
    ]
    missing_flow = "0" * 32
    for method, path, extra in attempts:
        kwargs = {"headers": bob, **extra}
        response = await api.client.request(method, path, **kwargs)
        assert response.status_code == 404, (method, path, response.status_code, response.text)
        # Indistinguishable from an id that never existed (no "yes it exists" oracle).
        if fid in path:
            ghost = await api.client.request(method, path.replace(fid, missing_flow), **kwargs)
            assert ghost.status_code == 404
            assert ghost.json()["error"]["message"] == response.json()["error"]["message"]
        assert fid not in response.text
        assert alice_id not in response.text

    for method, path, body in (
        ("PATCH", f"/api/v1/accounts/{alice_id}", {"disabled": True}),
        ("GET", "/api/v1/accounts", None),
        ("GET", "/api/v1/audit?scope=all", None),
    ):
        response = await api.client.request(method, path, json=body, headers=bob)
        assert response.status_code == 403, (method, path, response.text)

    # B's own listings show none of A's things.
    assert (await api.client.get("/api/v1/flows", headers=bob)).json()["items"] == []
    assert (await api.client.get("/api/v1/accounts/me/secrets", headers=bob)).json()["items"] == []
    bob_tokens = (await api.client.get("/api/v1/tokens", headers=bob)).json()["items"]
    assert token["id"] not in {t["id"] for t in bob_tokens}
    bob_audit = (await api.client.get("/api/v1/audit", headers=bob)).json()["items"]
    assert all(r["account_id"] != alice_id for r in bob_audit)

    assert await snapshot(api, alice, fid, token["id"]) == before
    still = {"Authorization": f"Bearer {token['token']}"}
    assert (await api.client.get("/api/v1/accounts/me", headers=still)).status_code == 200
