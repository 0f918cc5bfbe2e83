"""The secrets vault over HTTP: CRUD, values never listed, audited reads, key rotation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from flowrunner.api import create_app
from flowrunner.config import Settings
from flowrunner.errors import VaultError
from tests.api.helpers import ADMIN, Api, Headers, cheap_hasher, error_of

SECRETS = "/api/v1/accounts/me/secrets"
SMTP = {"host": "smtp.example.test", "port": 587, "user": "bot", "password": "p@ss"}


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Api]:
    app = create_app(settings, hasher=cheap_hasher())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Api(client, app)


def with_keys(settings: Settings, *keys: str) -> Settings:
    return settings.model_copy(update={"secret_keys": SecretStr(",".join(keys))})


async def test_create_read_list_and_delete(api: Api, alice: Headers) -> None:
    created = await api.client.post(
        SECRETS,
        json={"key": "SHOP_TOKEN", "value": "s3cr3t", "metadata": {"env": "prod"}},
        headers=alice,
    )
    assert created.status_code == 201
    assert "value" not in created.json()
    put = await api.client.put(f"{SECRETS}/SMTP", json={"value": SMTP}, headers=alice)
    assert put.status_code == 200

    listed = await api.client.get(SECRETS, headers=alice)
    assert [s["key"] for s in listed.json()["items"]] == ["SHOP_TOKEN", "SMTP"]
    assert "s3cr3t" not in listed.text
    assert "p@ss" not in listed.text

    one = (await api.client.get(f"{SECRETS}/SMTP", headers=alice)).json()
    assert one["value"] == SMTP
    token = (await api.client.get(f"{SECRETS}/SHOP_TOKEN", headers=alice)).json()
    assert token["value"] == "s3cr3t"
    assert token["metadata"] == {"env": "prod"}

    assert (await api.client.delete(f"{SECRETS}/SMTP", headers=alice)).status_code == 204
    assert (await api.client.get(f"{SECRETS}/SMTP", headers=alice)).status_code == 404


async def test_own_account_id_works_like_me(api: Api, alice: Headers) -> None:
    me = (await api.client.get("/api/v1/accounts/me", headers=alice)).json()
    await api.client.put(f"{SECRETS}/K", json={"value": "v"}, headers=alice)
    by_id = await api.client.get(f"/api/v1/accounts/{me['id']}/secrets/K", headers=alice)
    assert by_id.json()["value"] == "v"


async def test_invalid_keys_and_values_are_rejected(api: Api, alice: Headers) -> None:
    bad_key = await api.client.put(f"{SECRETS}/9lives", json={"value": "v"}, headers=alice)
    assert bad_key.status_code == 400
    assert error_of(bad_key)["code"] == "invalid_input"
    bad_value = await api.client.put(f"{SECRETS}/K", json={"value": [1, 2]}, headers=alice)
    assert bad_value.status_code == 422


async def test_values_are_encrypted_at_rest(api: Api, alice: Headers) -> None:
    await api.client.put(f"{SECRETS}/PLAIN", json={"value": "visible-if-broken"}, headers=alice)
    me = (await api.client.get("/api/v1/accounts/me", headers=alice)).json()
    stored = await api.app.state.services.store.secrets.get(me["id"], "PLAIN")
    assert b"visible-if-broken" not in stored.ciphertext


async def test_secrets_survive_rotation_to_a_new_key_and_removal_of_the_old(
    api: Api, alice: Headers, admin: Headers, settings: Settings, secret_key: str
) -> None:
    await api.client.put(f"{SECRETS}/TOKEN", json={"value": "under-key-1"}, headers=alice)
    await api.client.put(f"{SECRETS}/SMTP", json={"value": SMTP}, headers=alice)
    new_key = Fernet.generate_key().decode()

    async with running(with_keys(settings, new_key, secret_key)) as both:
        admin_now = await both.login(*ADMIN)
        rotated = await both.client.post("/api/v1/admin/secrets/rotate-key", headers=admin_now)
        assert rotated.status_code == 200
        assert rotated.json()["re_encrypted"] == 2

    async with running(with_keys(settings, new_key)) as only_new:
        alice_now = await only_new.login("alice", "password-123")
        token = await only_new.client.get(f"{SECRETS}/TOKEN", headers=alice_now)
        assert token.json()["value"] == "under-key-1"
        smtp = await only_new.client.get(f"{SECRETS}/SMTP", headers=alice_now)
        assert smtp.json()["value"] == SMTP


async def test_a_wrong_key_set_fails_at_start(api: Api, alice: Headers, settings: Settings) -> None:
    await api.client.put(f"{SECRETS}/TOKEN", json={"value": "v"}, headers=alice)
    with pytest.raises(VaultError, match="not in the keyring"):
        async with running(with_keys(settings, Fernet.generate_key().decode())):
            pass


async def test_saving_a_short_value_answers_with_a_warning(api: Api, alice: Headers) -> None:
    short = await api.client.post(SECRETS, json={"key": "FLAG", "value": "ok"}, headers=alice)
    assert short.status_code == 201
    assert "shorter than 4 characters" in short.json()["warnings"][0]
    nested = await api.client.put(
        f"{SECRETS}/SMTP", json={"value": {**SMTP, "user": "me"}}, headers=alice
    )
    assert nested.status_code == 200
    assert len(nested.json()["warnings"]) == 1
    long = await api.client.post(
        SECRETS, json={"key": "TOKEN", "value": "long-enough"}, headers=alice
    )
    assert long.json()["warnings"] == []


async def test_import_saves_every_secret_and_reports_each_key(api: Api, alice: Headers) -> None:
    await api.client.put(f"{SECRETS}/OLD", json={"value": "old-value"}, headers=alice)
    imported = await api.client.post(
        f"{SECRETS}/import",
        json={"secrets": {"OLD": "new-value", "NEW": "fresh-value", "SMTP": SMTP}},
        headers=alice,
    )
    assert imported.status_code == 200, imported.text
    report = imported.json()
    assert (report["added"], report["changed"], report["unchanged"]) == (
        ["NEW", "SMTP"],
        ["OLD"],
        [],
    )
    # SMTP's user "bot" is too short to be masked inside longer text: the caller is told.
    assert [w.split(":")[0] for w in report["warnings"]] == ["SMTP"]
    assert "new-value" not in imported.text
    one = await api.client.get(f"{SECRETS}/OLD", headers=alice)
    assert one.json()["value"] == "new-value"


async def test_import_with_one_bad_key_saves_nothing(api: Api, alice: Headers) -> None:
    refused = await api.client.post(
        f"{SECRETS}/import", json={"secrets": {"GOOD": "value-1", "9bad": "v"}}, headers=alice
    )
    assert refused.status_code == 400
    assert "9bad" in error_of(refused)["message"]
    assert (await api.client.get(f"{SECRETS}/GOOD", headers=alice)).status_code == 404
