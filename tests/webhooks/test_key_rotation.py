"""``flowrunner secrets rotate-key`` re-seals webhook endpoint secrets with the vault's secrets
(a trigger's verification key is a vault secret): after it, the database file holds none of
the old ciphertexts and the old key can be dropped, on a real SQLite file and the CLI as typed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from pydantic import SecretStr
from typer.testing import CliRunner

from flowrunner.audit import AuditLog, actions
from flowrunner.cli.app import app
from flowrunner.config import Settings
from flowrunner.secrets import Keyring, SecretVault, key_id
from flowrunner.storage import open_store
from flowrunner.webhooks.secretbox import EndpointConfig, seal, unseal

KEY1 = Keyring.generate_key()
KEY2 = Keyring.generate_key()
CONFIG = EndpointConfig(current="whsec-plain", headers={"Authorization": "Bearer tok"})


def settings(data_dir: Path, *keys: str) -> Settings:
    return Settings(data_dir=data_dir, secret_keys=SecretStr(",".join(keys)))


async def seed(data_dir: Path) -> tuple[bytes, bytes]:
    """An account with a vault secret (a trigger's verification key) and a webhook endpoint,
    under KEY1; their stored ciphertexts."""
    store = await open_store(settings(data_dir, KEY1))
    try:
        keyring = Keyring.from_settings(settings(data_dir, KEY1))
        account = await store.accounts.create("alice", "x")
        vault = SecretVault(store, keyring, AuditLog(store))
        secret = await vault.put(account, "GITHUB_HOOK", "gh-verification-key")
        endpoint = await store.webhooks.create_endpoint(
            account.id, url="https://hooks.example.test/x", secret=seal(keyring, CONFIG)
        )
        return secret.ciphertext, endpoint.secret.rpartition(":")[2].encode()
    finally:
        await store.close()


def database_bytes(data_dir: Path) -> bytes:
    """The database and everything beside it (-wal, -shm); not the key file."""
    return b"".join(
        p.read_bytes() for p in sorted(data_dir.iterdir()) if p.name.startswith("flowrunner.db")
    )


async def read_back(data_dir: Path) -> tuple[EndpointConfig, object, dict[str, object]]:
    """With KEY2 only: the start's keyring check, the endpoint, the secret, the audit."""
    store = await open_store(settings(data_dir, KEY2))
    try:
        keyring = Keyring.from_settings(settings(data_dir, KEY2))
        await keyring.verify(store)
        account = await store.accounts.get_by_username("alice")
        [endpoint] = (await store.webhooks.list_endpoints(account.id)).items
        value = await SecretVault(store, keyring, AuditLog(store)).resolve(
            account.id, "GITHUB_HOOK"
        )
        audit = (await AuditLog(store).list(None, limit=100)).items
        [rotation] = [r for r in audit if r.action == actions.KEY_ROTATED]
        return unseal(keyring, endpoint.secret), value, dict(rotation.data)
    finally:
        await store.close()


def test_rotate_key_reseals_webhook_endpoint_secrets_and_leaves_no_old_ciphertext(
    tmp_path: Path,
) -> None:
    secret_token, endpoint_token = asyncio.run(seed(tmp_path))
    before = database_bytes(tmp_path)
    old_marker = f"fr1:{key_id(KEY1)}:".encode()
    assert secret_token in before
    assert endpoint_token in before
    assert old_marker in before

    env = {"FLOWRUNNER_DATA_DIR": str(tmp_path), "FLOWRUNNER_SECRET_KEYS": f"{KEY2},{KEY1}"}
    result = CliRunner().invoke(app, ["secrets", "rotate-key"], env=env)
    assert result.exit_code == 0, result.output
    assert f"re-encrypted 2 secret(s) under key id {key_id(KEY2)}" in result.output

    after = database_bytes(tmp_path)
    assert secret_token not in after
    assert endpoint_token not in after
    assert old_marker not in after
    assert f"fr1:{key_id(KEY2)}:".encode() in after
    for plain in (b"whsec-plain", b"Bearer tok", b"gh-verification-key"):
        assert plain not in after

    config, value, audit = asyncio.run(read_back(tmp_path))  # the old key is gone
    assert config == CONFIG
    assert value == "gh-verification-key"
    assert (audit["re_encrypted"], audit["resealed"]) == (1, 1)

    again = CliRunner().invoke(app, ["secrets", "rotate-key"], env=env)
    assert "re-encrypted 0 secret(s)" in again.output  # nothing left under the old key
