"""Key rotation for run checkpoints: the sealed parts of waiting runs' checkpoints re-sealed
under the keyring's newest key (a ``SecretVault`` resealer, run by ``rotate-key``).

Only waiting runs: nothing else writes their checkpoint while they wait (they hold no lease),
and they may wait for days, long past the day the old key is removed. A run that is running
seals every checkpoint it writes with the newest key, so its parts under an old key are gone
by its next step; keep the old key until the runs that were running at the rotation ended.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowrunner.errors import NotFound
from flowrunner.executions.sealing import SEALED, is_sealed
from flowrunner.secrets import Keyring
from flowrunner.storage import Store
from flowrunner.storage.protocols import MAX_LIMIT


async def reseal_checkpoints(store: Store, keyring: Keyring) -> int:
    """Re-seal the checkpoint parts of every waiting run sealed under an older key; how many
    checkpoints changed. Safe while servers run (both keys decrypt), and to re-run."""
    count = 0
    accounts: str | None = None
    while True:
        page = await store.accounts.admin_list(limit=MAX_LIMIT, cursor=accounts)
        for account in page.items:
            count += await _reseal_account(store, keyring, account.id)
        if page.next_cursor is None:
            return count
        accounts = page.next_cursor


async def _reseal_account(store: Store, keyring: Keyring, account_id: str) -> int:
    count = 0
    cursor: str | None = None
    while True:
        page = await store.executions.list(
            account_id, status=["waiting"], limit=MAX_LIMIT, cursor=cursor
        )
        for execution in page.items:
            if await _reseal_one(store, keyring, account_id, execution.id):
                count += 1
        if page.next_cursor is None:
            return count
        cursor = page.next_cursor


async def _reseal_one(store: Store, keyring: Keyring, account_id: str, execution_id: str) -> bool:
    runs = store.executions
    try:
        point = await runs.get_checkpoint(account_id, execution_id)
    except NotFound:
        return False  # deleted meanwhile
    if point is None:
        return False
    primary = keyring.primary_id
    changed = [False]
    shared = _resealed(point.shared, keyring, primary, changed)
    results = {k: _resealed(v, keyring, primary, changed) for k, v in point.results.items()}
    resume = {k: _resealed(v, keyring, primary, changed) for k, v in point.resume.items()}
    if not changed[0]:
        return False
    # Woken meanwhile (and written since): its own writes are sealed with the newest key.
    current = await runs.get_checkpoint(account_id, execution_id)
    if current is None or current.updated_at != point.updated_at:
        return False
    await runs.save_checkpoint(
        account_id, execution_id,
        shared=shared, next_node=point.next_node, results=results, resume=resume,
    )  # fmt: skip
    return True


def _resealed(value: Any, keyring: Keyring, primary: str, changed: list[bool]) -> Any:
    if is_sealed(value):
        if value["key_id"] == primary:
            return value
        plaintext = keyring.decrypt(str(value["data"]).encode("ascii"), str(value["key_id"]))
        ciphertext, kid = keyring.encrypt(plaintext)
        changed[0] = True
        return {SEALED: value[SEALED], "key_id": kid, "data": ciphertext.decode("ascii")}
    if isinstance(value, Mapping):
        return {k: _resealed(v, keyring, primary, changed) for k, v in value.items()}
    if isinstance(value, list):
        return [_resealed(v, keyring, primary, changed) for v in value]
    return value
