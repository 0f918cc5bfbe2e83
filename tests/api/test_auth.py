"""Authentication over HTTP: Basic, Bearer tokens, login, brute-force limits, accounts."""

from __future__ import annotations

import base64

import httpx

from tests.api.helpers import PASSWORD, Api, Headers, error_of


def basic(username: str, password: str) -> Headers:
    raw = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


async def test_basic_authentication_with_the_right_password(api: Api, alice: Headers) -> None:
    response = await api.client.get("/api/v1/accounts/me", headers=basic("alice", PASSWORD))
    assert response.status_code == 200
    assert response.json()["username"] == "alice"
    assert response.json()["is_admin"] is False


async def test_wrong_password_and_unknown_user_read_the_same(api: Api, alice: Headers) -> None:
    wrong = await api.client.get("/api/v1/accounts/me", headers=basic("alice", "nope-nope"))
    unknown = await api.client.get("/api/v1/accounts/me", headers=basic("nobody", "nope-nope"))
    assert wrong.status_code == unknown.status_code == 401
    assert error_of(wrong)["message"] == error_of(unknown)["message"]


async def test_login_returns_a_token_as_in_the_original(api: Api, alice: Headers) -> None:
    response = await api.client.post(
        "/api/v1/login", json={"username": "alice", "password": PASSWORD}
    )
    assert response.status_code == 200
    body = response.json()
    assert {"token", "account_id", "username"} <= set(body)
    assert body["username"] == "alice"
    me = await api.client.get(
        "/api/v1/accounts/me", headers={"Authorization": f"Bearer {body['token']}"}
    )
    assert me.json()["id"] == body["account_id"]


async def test_repeated_failures_are_a_429_with_retry_after_for_that_address_only(
    api: Api, alice: Headers
) -> None:
    for _ in range(5):
        failed = await api.client.post(
            "/api/v1/login", json={"username": "alice", "password": "wrong-password"}
        )
        assert failed.status_code == 401
    limited = await api.client.post(
        "/api/v1/login", json={"username": "alice", "password": PASSWORD}
    )
    assert limited.status_code == 429
    assert error_of(limited)["code"] == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1
    # The owner, from another address, still gets in.
    transport = httpx.ASGITransport(api.app, client=("10.0.0.9", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as elsewhere:
        other = Api(elsewhere, api.app)
        assert (await other.login("alice", PASSWORD))["Authorization"].startswith("Bearer ")
    # A token still works from the blocked address: tokens are not password guesses.
    assert (await api.client.get("/api/v1/accounts/me", headers=alice)).status_code == 200


async def test_tokens_are_shown_once_listed_without_secret_and_revocable(
    api: Api, alice: Headers
) -> None:
    created = await api.client.post(
        "/api/v1/tokens", json={"name": "ci", "expires_in_seconds": 3600}, headers=alice
    )
    assert created.status_code == 201
    token = created.json()
    assert token["token"].startswith(token["prefix"])
    assert token["expires_at"] is not None
    bearer = {"Authorization": f"Bearer {token['token']}"}
    assert (await api.client.get("/api/v1/accounts/me", headers=bearer)).status_code == 200

    listed = (await api.client.get("/api/v1/tokens", headers=alice)).json()
    assert all("token" not in t for t in listed["items"])
    assert token["id"] in {t["id"] for t in listed["items"]}
    used = (await api.client.get(f"/api/v1/tokens/{token['id']}", headers=alice)).json()
    assert used["last_used_at"] is not None

    revoked = await api.client.delete(f"/api/v1/tokens/{token['id']}", headers=alice)
    assert revoked.status_code == 204
    assert (await api.client.get("/api/v1/accounts/me", headers=bearer)).status_code == 401


async def test_a_made_up_bearer_token_is_a_401(api: Api) -> None:
    response = await api.client.get(
        "/api/v1/accounts/me", headers={"Authorization": "Bearer frt_" + "x" * 43}
    )
    assert response.status_code == 401


async def test_change_password(api: Api, alice: Headers) -> None:
    bad = await api.client.post(
        "/api/v1/accounts/me/password",
        json={"old_password": "not-it-at-all", "new_password": "brand-new-pass"},
        headers=alice,
    )
    assert bad.status_code == 403
    ok = await api.client.post(
        "/api/v1/accounts/me/password",
        json={"old_password": PASSWORD, "new_password": "brand-new-pass"},
        headers=alice,
    )
    assert ok.status_code == 204
    assert (await api.login("alice", "brand-new-pass"))["Authorization"]


async def test_admin_creates_lists_and_disables_accounts(api: Api, admin: Headers) -> None:
    created = await api.client.post(
        "/api/v1/accounts", json={"username": "carol", "password": PASSWORD}, headers=admin
    )
    assert created.status_code == 201
    carol = created.json()
    assert carol["is_admin"] is False
    duplicate = await api.client.post(
        "/api/v1/accounts", json={"username": "carol", "password": PASSWORD}, headers=admin
    )
    assert duplicate.status_code == 409
    listed = await api.client.get("/api/v1/accounts", params={"username": "car"}, headers=admin)
    assert [a["username"] for a in listed.json()["items"]] == ["carol"]

    carol_headers = await api.login("carol", PASSWORD)
    disabled = await api.client.patch(
        f"/api/v1/accounts/{carol['id']}", json={"disabled": True}, headers=admin
    )
    assert disabled.json()["disabled"] is True
    me = await api.client.get("/api/v1/accounts/me", headers=carol_headers)
    assert me.status_code == 401


async def test_short_passwords_are_a_400(api: Api, admin: Headers) -> None:
    response = await api.client.post(
        "/api/v1/accounts", json={"username": "dave", "password": "short"}, headers=admin
    )
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_input"


async def test_admin_routes_are_403_for_regular_accounts(api: Api, alice: Headers) -> None:
    for method, path, body in (
        ("GET", "/api/v1/accounts", None),
        ("POST", "/api/v1/accounts", {"username": "mallory", "password": PASSWORD}),
        ("PATCH", "/api/v1/accounts/me", {"disabled": True}),
        ("POST", "/api/v1/admin/secrets/rotate-key", None),
        ("GET", "/api/v1/audit?scope=all", None),
    ):
        response = await api.client.request(method, path, json=body, headers=alice)
        assert response.status_code == 403, (method, path, response.text)
