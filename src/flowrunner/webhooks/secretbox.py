"""An endpoint's signing secrets and settings, sealed with the vault's keyring in the store.

The store's ``secret`` column holds ``fr1:<key id>:<Fernet token>`` of a small JSON object:
``current`` (the secret), or ``ref`` (the name of a vault secret, for a flow's
``secret: ${secrets.NAME}``, read when sending), ``previous`` and ``previous_until`` while a
rotation's grace period lasts, and the endpoint's extra ``headers`` (they often carry a
token) and ``flow_ids`` filter, which the store's endpoint record has no column for.
Plaintext secrets exist only in memory, while signing, and in the one API answer that
creates or rotates them. ``reseal_endpoints`` re-seals every endpoint under the keyring's
newest key: the vault's key rotation (``rotate-key``) runs it, so an old key can go.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from flowrunner.errors import NotFound, WebhookError
from flowrunner.secrets import Keyring
from flowrunner.storage.protocols import MAX_LIMIT, Store

PREFIX = "fr1"


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    current: str | None = None
    ref: str | None = None
    previous: str | None = None
    previous_until: datetime | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    flow_ids: tuple[str, ...] = ()
    """Deliver only events of these flows (empty: every flow)."""

    def signing(self, now: datetime, resolved: str | None = None) -> list[str]:
        """The secrets that sign a message now: the current one (or the resolved reference)
        and, during a rotation's grace period, the previous one."""
        found = [s for s in (self.current or resolved,) if s]
        if self.previous and self.previous_until and now < self.previous_until:
            found.append(self.previous)
        return found

    def rotated(self, new: str, until: datetime) -> EndpointConfig:
        return replace(self, current=new, ref=None, previous=self.current, previous_until=until)

    def covers(self, flow_id: str) -> bool:
        return not self.flow_ids or flow_id in self.flow_ids


def seal(keyring: Keyring, config: EndpointConfig) -> str:
    until = config.previous_until.isoformat() if config.previous_until else None
    plain = {
        "current": config.current,
        "ref": config.ref,
        "previous": config.previous,
        "previous_until": until,
        "headers": dict(config.headers),
        "flow_ids": list(config.flow_ids),
    }
    token, kid = keyring.encrypt(json.dumps(plain).encode())
    return f"{PREFIX}:{kid}:{token.decode()}"


def unseal(keyring: Keyring, stored: str) -> EndpointConfig:
    prefix, _, rest = stored.partition(":")
    kid, _, token = rest.partition(":")
    if prefix != PREFIX or not token:
        raise WebhookError("the webhook endpoint's stored secret is not sealed")
    data: dict[str, Any] = json.loads(keyring.decrypt(token.encode(), kid))
    until = data.get("previous_until")
    return EndpointConfig(
        current=data.get("current"),
        ref=data.get("ref"),
        previous=data.get("previous"),
        previous_until=datetime.fromisoformat(until) if until else None,
        headers=dict(data.get("headers") or {}),
        flow_ids=tuple(data.get("flow_ids") or ()),
    )


def sealed_key_id(stored: str) -> str | None:
    prefix, _, rest = stored.partition(":")
    return rest.partition(":")[0] if prefix == PREFIX else None


async def reseal_endpoints(store: Store, keyring: Keyring) -> int:
    """Re-seal every webhook endpoint of every account that is sealed under an older key;
    how many were. Safe while servers run (both keys decrypt), and to re-run."""
    primary = keyring.primary_id
    count = 0
    accounts: str | None = None
    while True:
        page = await store.accounts.admin_list(limit=MAX_LIMIT, cursor=accounts)
        for account in page.items:
            count += await _reseal_account(store, keyring, account.id, primary)
        if page.next_cursor is None:
            return count
        accounts = page.next_cursor


async def _reseal_account(store: Store, keyring: Keyring, account_id: str, primary: str) -> int:
    count = 0
    cursor: str | None = None
    while True:
        page = await store.webhooks.list_endpoints(account_id, limit=MAX_LIMIT, cursor=cursor)
        for endpoint in page.items:
            if sealed_key_id(endpoint.secret) in (primary, None):
                continue
            resealed = seal(keyring, unseal(keyring, endpoint.secret))
            try:
                current = await store.webhooks.get_endpoint(account_id, endpoint.id)
            except NotFound:
                continue  # deleted meanwhile
            # Changed meanwhile (rotated: sealed under the new key already): keep the newer
            # value. As in the vault's rotation, a change between this read and the write
            # below could still be overwritten; the window is one round trip.
            if current.secret != endpoint.secret:
                continue
            await store.webhooks.update_endpoint(account_id, endpoint.id, secret=resealed)
            count += 1
        if page.next_cursor is None:
            return count
        cursor = page.next_cursor
