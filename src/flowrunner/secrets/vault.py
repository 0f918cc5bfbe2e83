"""The secrets vault: per-account secrets encrypted at rest, audited reads, key rotation.

Values are JSON (a string or an object, e.g. SMTP credentials) encrypted with the keyring's
newest key; the key id is stored beside the ciphertext. Listings return metadata only. Runs
get every value of an account at once through ``resolve_all`` (not audited per key: one run
may read many secrets many times; the run itself is recorded).
"""

from __future__ import annotations

import builtins
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flowrunner.audit import AuditLog, actions
from flowrunner.errors import InvalidInput, NotFound
from flowrunner.secrets.keyring import Keyring
from flowrunner.secrets.masking import short_value_warning
from flowrunner.secrets.registry import KeyIdRegistry
from flowrunner.storage.protocols import DEFAULT_LIMIT, MAX_LIMIT, Store
from flowrunner.storage.records import Account, JSONValue, Page, Secret

# Usable as ${secrets.NAME}: a plain dotted-path segment.
KEY_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
MAX_VALUE_BYTES = 64 * 1024
MAX_METADATA_BYTES = 16 * 1024
ROTATION_BATCH = 100
# One import is one request: bounded like a listing page, so its writes and undo stay small.
MAX_IMPORT_KEYS = 1000

SecretValue = str | dict[str, Any]

log = logging.getLogger(__name__)

Resealer = Callable[[Store, Keyring], Awaitable[int]]
"""Re-encrypts values other services sealed with the vault's keyring (webhook endpoint
secrets) under its newest key, during ``rotate``; how many it re-encrypted."""


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What an import did, key by key (sorted); values never appear here."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class SecretVault:
    def __init__(
        self,
        store: Store,
        keyring: Keyring,
        audit: AuditLog,
        *,
        resealers: Sequence[Resealer] = (),
    ) -> None:
        self._store = store
        self._keyring = keyring
        self._audit = audit
        self._registry = KeyIdRegistry(store)
        # What else ``rotate`` moves to the new key (the composition root knows the services).
        self._resealers = tuple(resealers)
        self._changed: list[Callable[[str, str], None]] = []

    def on_change(self, callback: Callable[[str, str], None]) -> None:
        """``callback(account_id, key)`` once a secret's value changed or it was deleted (the
        hook route's cache of trigger keys forgets it at once)."""
        self._changed.append(callback)

    def _notify(self, account_id: str, key: str) -> None:
        for callback in self._changed:
            callback(account_id, key)

    @property
    def keyring(self) -> Keyring:
        """The vault's keys, which also seal run checkpoints that hold a secret."""
        return self._keyring

    async def put(
        self,
        account: Account,
        key: str,
        value: SecretValue,
        *,
        metadata: Mapping[str, JSONValue] | None = None,
        actor: Account | None = None,
    ) -> Secret:
        """Create or replace ``key``'s value; ``actor`` is who did it if not the owner."""
        _check_key(key)
        plaintext = _plaintext(key, value)
        meta = dict(metadata or {})
        if len(json.dumps(meta)) > MAX_METADATA_BYTES:
            raise InvalidInput(f"secret metadata is limited to {MAX_METADATA_BYTES} bytes", key=key)
        try:
            await self._store.secrets.get(account.id, key)
            action = actions.SECRET_UPDATED
        except NotFound:
            action = actions.SECRET_CREATED
        ciphertext, kid = self._keyring.encrypt(plaintext)
        await self._registry.note(kid)  # before the first ciphertext under kid exists
        secret = await self._store.secrets.put(
            account.id, key, ciphertext=ciphertext, key_id=kid, metadata=meta
        )
        self._notify(account.id, key)
        await self._audit.record(
            action, account_id=account.id, actor_id=(actor or account).id, target=key
        )
        warning = short_value_warning(value)
        if warning is not None:
            log.warning("secret %s of account %s: %s", key, account.id, warning)
        return secret

    async def import_values(
        self,
        account: Account,
        values: Mapping[str, SecretValue],
        *,
        actor: Account | None = None,
    ) -> ImportReport:
        """Create or replace many secrets at once, all or nothing.

        Every key and value is checked before anything is written; a write that fails midway
        puts back what the earlier writes replaced (the store has no multi-key transaction),
        then raises. A value equal to the stored one is left alone (no write, no audit).
        """
        if len(values) > MAX_IMPORT_KEYS:
            raise InvalidInput(f"an import is limited to {MAX_IMPORT_KEYS} secrets")
        for key, value in values.items():
            try:
                _check_key(key)
            except InvalidInput as exc:  # among many keys, say which one
                raise InvalidInput(f"{key!r}: {exc.message}", key=key) from exc
            _plaintext(key, value)
        report = ImportReport()
        previous: dict[str, Secret | None] = {}
        for key in sorted(values):
            try:
                current: Secret | None = await self._store.secrets.get(account.id, key)
            except NotFound:
                current = None
            if current is not None and self._decrypt(current) == values[key]:
                report.unchanged.append(key)
                continue
            previous[key] = current
            (report.changed if current is not None else report.added).append(key)
            warning = short_value_warning(values[key])
            if warning is not None:
                report.warnings.append(f"{key}: {warning}")
        written: list[str] = []
        try:
            for key in previous:
                await self.put(account, key, values[key], actor=actor)
                written.append(key)
        except BaseException:
            await self._undo(account, written, previous)
            raise
        return report

    async def _undo(
        self, account: Account, written: builtins.list[str], previous: Mapping[str, Secret | None]
    ) -> None:
        for key in written:
            before = previous[key]
            try:
                if before is None:
                    await self._store.secrets.delete(account.id, key)
                else:
                    await self._store.secrets.put(
                        account.id,
                        key,
                        ciphertext=before.ciphertext,
                        key_id=before.key_id,
                        metadata=before.metadata,
                    )
            except Exception:  # keep undoing the others; the import's own error is raised
                log.exception("could not undo the import of secret %s (account %s)", key,
                              account.id)  # fmt: skip
            self._notify(account.id, key)

    async def get(self, account: Account, key: str) -> Secret:
        """Metadata of one secret (the record holds only ciphertext); not audited."""
        return await self._store.secrets.get(account.id, key)

    async def get_value(self, account: Account, key: str, *, actor: Account | None = None) -> Any:
        """The decrypted value (str or dict); every read is audited."""
        secret = await self._store.secrets.get(account.id, key)
        value = self._decrypt(secret)
        await self._audit.record(
            actions.SECRET_READ, account_id=account.id, actor_id=(actor or account).id, target=key
        )
        return value

    async def list(
        self,
        account: Account,
        *,
        cursor: str | None = None,
        limit: int = DEFAULT_LIMIT,
        key_prefix: str = "",
    ) -> Page[Secret]:
        """Secrets ordered by key; callers must show metadata only, never ``ciphertext``."""
        return await self._store.secrets.list(
            account.id, limit=limit, cursor=cursor, key_prefix=key_prefix
        )

    async def delete(self, account: Account, key: str, *, actor: Account | None = None) -> None:
        await self._store.secrets.delete(account.id, key)
        self._notify(account.id, key)
        await self._audit.record(
            actions.SECRET_DELETED,
            account_id=account.id,
            actor_id=(actor or account).id,
            target=key,
        )

    async def resolve(self, account_id: str, key: str) -> Any:
        """One decrypted secret for the system's own use (a trigger's verification key), like
        ``resolve_all``: not audited per read. ``NotFound`` if missing."""
        return self._decrypt(await self._store.secrets.get(account_id, key))

    async def resolve_all(self, account_id: str) -> dict[str, Any]:
        """Every secret of the account, decrypted, for ``${secrets.NAME}`` in runs."""
        resolved: dict[str, Any] = {}
        cursor: str | None = None
        while True:
            page = await self._store.secrets.list(account_id, limit=MAX_LIMIT, cursor=cursor)
            for secret in page.items:
                resolved[secret.key] = self._decrypt(secret)
            if page.next_cursor is None:
                return resolved
            cursor = page.next_cursor

    async def rotate(self, actor: Account | None = None) -> int:
        """Re-encrypt every secret of every account under the newest key, and what the
        ``resealers`` seal with the keyring (webhook endpoint secrets); returns how many.

        Safe to run while the server serves: readers decrypt old and new ciphertexts alike
        (both keys are in the keyring), and a value written meanwhile is already under the
        newest key. Safe to re-run after an interruption.
        """
        primary = self._keyring.primary_id
        await self._registry.note(primary)
        old_ids = [
            kid
            for kid in dict.fromkeys([*self._keyring.key_ids, *await self._registry.key_ids()])
            if kid != primary
        ]
        count = 0
        for kid in old_ids:
            count += await self._rotate_key(kid)
        # Before the old key ids are forgotten: a key is only free once nothing uses it.
        resealed = 0
        for reseal in self._resealers:
            resealed += await reseal(self._store, self._keyring)
        for kid in old_ids:
            await self._registry.forget(kid)
        await self._audit.record(
            actions.KEY_ROTATED,
            account_id=None,
            actor_id=actor.id if actor else None,
            target=primary,
            details={
                "from_key_ids": builtins.list(old_ids),
                "re_encrypted": count,
                "resealed": resealed,
            },
        )
        return count + resealed

    async def _rotate_key(self, kid: str) -> int:
        count = 0
        while True:
            # Always the first page: each re-encrypted secret leaves the key id's listing.
            page = await self._store.secrets.admin_list_by_key_id(kid, limit=ROTATION_BATCH)
            if not page.items:
                return count
            for secret in page.items:
                plaintext = self._keyring.decrypt(secret.ciphertext, secret.key_id)
                ciphertext, new_kid = self._keyring.encrypt(plaintext)
                try:
                    current = await self._store.secrets.get(secret.account_id, secret.key)
                except NotFound:
                    continue  # deleted meanwhile
                # Written meanwhile (already under the new key): keep the newer value. The
                # store has no compare-and-set, so a write between this check and the put
                # below could still be overwritten by the older value; the window is one
                # round trip.
                if current.ciphertext != secret.ciphertext:
                    continue
                await self._store.secrets.put(
                    secret.account_id,
                    secret.key,
                    ciphertext=ciphertext,
                    key_id=new_kid,
                    metadata=secret.metadata,
                )
                count += 1

    def _decrypt(self, secret: Secret) -> Any:
        return json.loads(self._keyring.decrypt(secret.ciphertext, secret.key_id))


def _plaintext(key: str, value: Any) -> bytes:
    if not isinstance(value, str | dict):
        raise InvalidInput(f"{key}: a secret value must be a string or a JSON object", key=key)
    plaintext = json.dumps(value, separators=(",", ":")).encode()
    if len(plaintext) > MAX_VALUE_BYTES:
        raise InvalidInput(f"{key}: a secret value is limited to {MAX_VALUE_BYTES} bytes", key=key)
    return plaintext


def _check_key(key: str) -> None:
    if not KEY_PATTERN.match(key):
        raise InvalidInput(
            "a secret key must be 1-128 letters, digits or _ and not start with a digit "
            "(it is used as ${secrets.KEY})",
            key=key,
        )
