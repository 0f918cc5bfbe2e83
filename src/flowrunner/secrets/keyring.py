"""The vault's encryption keys: Fernet keys with stable ids, newest first.

A key id is the first 8 hex chars of the sha256 of the key text. It is stored beside every
ciphertext, so decryption picks the right key directly (no trial decryption) and a missing
key is named precisely in the error. The first key encrypts; the others only decrypt, which
is what lets rotation happen without downtime: add the new key in front, re-encrypt, then
drop the old one.

Keys come from ``FLOWRUNNER_SECRET_KEYS`` (comma-separated). Without it, a key is generated
once into ``<data_dir>/secret.key`` (mode 0600) and reused on every start, so restarting never
makes secrets unreadable; a warning says to set the variable explicitly in production, where
the key must not live next to the database it protects. The memory store, whose secrets die
with the process, gets a key in memory only.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.fernet import Fernet, InvalidToken
from pydantic import SecretStr

from flowrunner.errors import VaultError
from flowrunner.secrets.registry import KeyIdRegistry
from flowrunner.storage.protocols import Store

log = logging.getLogger(__name__)

KEY_FILE_NAME = "secret.key"


class KeyringSettings(Protocol):
    """What ``Keyring.from_settings`` reads (``flowrunner.config.Settings`` fits)."""

    @property
    def secret_keys(self) -> SecretStr | None: ...
    @property
    def data_dir(self) -> Path: ...
    @property
    def storage(self) -> str: ...


def key_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:8]


@dataclass(frozen=True, slots=True)
class _Key:
    id: str
    fernet: Fernet


class Keyring:
    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise VaultError("the secret keyring is empty (set FLOWRUNNER_SECRET_KEYS)")
        entries: list[_Key] = []
        for position, key in enumerate(keys, start=1):
            try:
                fernet = Fernet(key.encode())
            except ValueError as exc:
                # Never echo the key: the message may end up in logs.
                raise VaultError(
                    f"secret key #{position} is not a valid Fernet key "
                    "(32 url-safe base64-encoded bytes; make one with "
                    "`python -c 'from cryptography.fernet import Fernet; "
                    "print(Fernet.generate_key().decode())'`)"
                ) from exc
            entries.append(_Key(key_id(key), fernet))
        self._keys = entries
        self._by_id = {k.id: k for k in entries}

    @staticmethod
    def generate_key() -> str:
        return Fernet.generate_key().decode()

    @classmethod
    def from_settings(cls, settings: KeyringSettings) -> Keyring:
        if settings.secret_keys is not None:
            raw = settings.secret_keys.get_secret_value()
            return cls([k.strip() for k in raw.split(",") if k.strip()])
        if settings.storage == "memory":
            # Secrets die with the process, so a key that outlives it would protect nothing;
            # and tests on the memory store leave no key files behind.
            return cls([cls.generate_key()])
        return cls([_load_or_create_key_file(Path(settings.data_dir).expanduser())])

    @property
    def primary_id(self) -> str:
        return self._keys[0].id

    @property
    def key_ids(self) -> list[str]:
        """Every key id, newest (the encrypting one) first."""
        return [k.id for k in self._keys]

    def encrypt(self, plaintext: bytes) -> tuple[bytes, str]:
        """The ciphertext under the newest key, and that key's id."""
        primary = self._keys[0]
        return primary.fernet.encrypt(plaintext), primary.id

    async def verify(self, store: Store) -> None:
        """Fail loudly now if stored secrets need a key this keyring lacks."""
        await verify_keyring(self, store)

    def decrypt(self, ciphertext: bytes, kid: str) -> bytes:
        key = self._by_id.get(kid)
        if key is None:
            raise VaultError(
                f"a secret is encrypted with key id {kid}, which is not in the keyring "
                f"(loaded: {', '.join(self.key_ids)}); add that key back to "
                "FLOWRUNNER_SECRET_KEYS (after the new one) and run `flowrunner secrets "
                "rotate-key` before removing it",
                key_id=kid,
            )
        try:
            return key.fernet.decrypt(ciphertext)
        except InvalidToken as exc:
            raise VaultError(
                f"a secret under key id {kid} cannot be decrypted (corrupted ciphertext)",
                key_id=kid,
            ) from exc


def _load_or_create_key_file(data_dir: Path) -> str:
    path = data_dir / KEY_FILE_NAME
    if path.exists():
        log.warning(
            "secrets are encrypted with the generated key in %s; set FLOWRUNNER_SECRET_KEYS "
            "in production (keep the key away from the database it protects)",
            path,
        )
        if path.stat().st_mode & 0o077:
            log.warning("%s is readable by other users; chmod 600 it", path)
        return _read_key_file(path)
    data_dir.mkdir(parents=True, exist_ok=True)
    key = Keyring.generate_key()
    # O_EXCL: if another process created the file meanwhile, use theirs instead of
    # overwriting it (two keys would make the loser's secrets unreadable).
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key_file(path)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    log.warning(
        "generated a secrets encryption key in %s (mode 0600); back it up, and set "
        "FLOWRUNNER_SECRET_KEYS explicitly in production",
        path,
    )
    return key


async def verify_keyring(keyring: Keyring, store: Store) -> None:
    """Fail loudly at start when stored secrets need a key the keyring lacks.

    For every key id the vault ever used (plus the keyring's own), one stored secret is
    decrypted: a missing key raises ``VaultError`` naming its id, before any run needs it.
    """
    registry = KeyIdRegistry(store)
    for kid in dict.fromkeys([*await registry.key_ids(), *keyring.key_ids]):
        sample = await store.secrets.admin_list_by_key_id(kid, limit=1)
        for secret in sample.items:
            keyring.decrypt(secret.ciphertext, secret.key_id)


def _read_key_file(path: Path) -> str:
    key = path.read_text().strip()
    if not key:
        raise VaultError(f"the secret key file {path} is empty; restore it from a backup")
    return key
