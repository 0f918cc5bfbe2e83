"""``/api/v1/webhooks`` in-process: endpoint CRUD, validation naming the field, per-account
isolation, the secret shown once and stored sealed, audit records."""

from __future__ import annotations

from pathlib import Path

from flowrunner.config import Settings
from tests.api.helpers import Api, Headers

HOOKS = "/api/v1/webhooks"
URL = "https://hooks.example.test/in"


async def test_create_get_update_list_and_delete(api: Api, alice: Headers) -> None:
    made = await api.client.post(
        HOOKS,
        json={"url": URL, "events": ["execution.failed"], "headers": {"X-Token": "tok-123"}},
        headers=alice,
    )
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["secret"].startswith("whsec_")
    assert body["headers"] == {"X-Token": "***"}
    assert body["source"] == "api"
    one = await api.client.get(f"{HOOKS}/{body['id']}", headers=alice)
    assert one.json()["secret"] is None
    assert "tok-123" not in one.text
    changed = await api.client.patch(
        f"{HOOKS}/{body['id']}", json={"enabled": False, "events": []}, headers=alice
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["enabled"] is False
    assert changed.json()["events"] == []
    listed = await api.client.get(HOOKS, headers=alice)
    assert [e["id"] for e in listed.json()["items"]] == [body["id"]]
    assert body["secret"] not in listed.text
    assert (await api.client.delete(f"{HOOKS}/{body['id']}", headers=alice)).status_code == 204
    assert (await api.client.get(f"{HOOKS}/{body['id']}", headers=alice)).status_code == 404


async def test_bad_input_names_the_field(api: Api, alice: Headers) -> None:
    cases = [
        ({"url": URL, "events": ["execution.exploded"]}, "execution.exploded"),
        ({"url": "ftp://example.test/x"}, "scheme"),
        ({"url": "http://127.0.0.1:9/x"}, "127.0.0.1"),
        ({"url": URL, "headers": {"webhook-signature": "x"}}, "webhook-signature"),
        ({"url": URL, "secret": "whsec_***"}, "secret"),
    ]
    for payload, named in cases:
        response = await api.client.post(HOOKS, json=payload, headers=alice)
        assert response.status_code == 400, (payload, response.text)
        assert named in response.json()["error"]["message"], response.text


async def test_another_account_sees_nothing(api: Api, alice: Headers, bob: Headers) -> None:
    made = (await api.client.post(HOOKS, json={"url": URL}, headers=alice)).json()
    for method, path in [
        ("GET", f"{HOOKS}/{made['id']}"),
        ("PATCH", f"{HOOKS}/{made['id']}"),
        ("DELETE", f"{HOOKS}/{made['id']}"),
        ("POST", f"{HOOKS}/{made['id']}/rotate-secret"),
        ("POST", f"{HOOKS}/{made['id']}/test"),
        ("GET", f"{HOOKS}/{made['id']}/deliveries"),
    ]:
        body: dict[str, object] | None = {} if method == "PATCH" else None
        response = await api.client.request(method, path, headers=bob, json=body)
        assert response.status_code == 404, (method, path, response.text)
    assert (await api.client.get(HOOKS, headers=bob)).json()["items"] == []


async def test_secrets_are_stored_sealed_and_changes_audited(
    api: Api, alice: Headers, settings: Settings
) -> None:
    made = (
        await api.client.post(
            HOOKS,
            json={"url": URL, "headers": {"Authorization": "Bearer hdr-s3cret"}},
            headers=alice,
        )
    ).json()
    rotated = await api.client.post(f"{HOOKS}/{made['id']}/rotate-secret", headers=alice)
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["secret"] != made["secret"]
    stored = b"".join(p.read_bytes() for p in Path(settings.data_dir).glob("flowrunner.db*"))
    for plain in (made["secret"], rotated.json()["secret"], "hdr-s3cret"):
        assert plain.encode() not in stored
        assert plain.removeprefix("whsec_").encode() not in stored
    audit = await api.client.get("/api/v1/audit", headers=alice)
    actions = [r["action"] for r in audit.json()["items"]]
    assert "webhook.created" in actions
    assert "webhook.secret_rotated" in actions
