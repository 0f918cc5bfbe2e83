"""``flowrunner secrets rotate-key``: re-encrypt every secret under the newest key (the vault's,
and the webhook endpoints' signing secrets sealed with the same keys)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from flowrunner.config import Settings
    from flowrunner.secrets import Keyring

secrets_app = typer.Typer(help="Manage the secrets vault's encryption keys.", no_args_is_help=True)
EXAMPLE = "Example: FLOWRUNNER_SECRET_KEYS=new,old flowrunner admin secrets rotate-key"


def rotate_key() -> None:
    """Re-encrypt all secrets (vault secrets and webhook endpoint secrets) with the first key
    of FLOWRUNNER_SECRET_KEYS.

    Procedure: put the new key first in FLOWRUNNER_SECRET_KEYS (keep the old ones after it)
    and restart the servers; run this command; then remove the old keys.
    """
    import asyncio

    from flowrunner.config import load_settings
    from flowrunner.secrets import Keyring

    settings = load_settings()
    keyring = Keyring.from_settings(settings)
    count = asyncio.run(_rotate(settings, keyring))
    typer.echo(f"re-encrypted {count} secret(s) under key id {keyring.primary_id}")
    old = [kid for kid in keyring.key_ids if kid != keyring.primary_id]
    if old:
        typer.echo(f"keys no longer needed (key ids): {', '.join(old)}; remove them from "
                   "FLOWRUNNER_SECRET_KEYS")  # fmt: skip


async def _rotate(settings: Settings, keyring: Keyring) -> int:
    from flowrunner.audit import AuditLog
    from flowrunner.executions.checkpoint_reseal import reseal_checkpoints
    from flowrunner.secrets import SecretVault
    from flowrunner.storage import open_store
    from flowrunner.webhooks.secretbox import reseal_endpoints

    store = await open_store(settings)
    try:
        vault = SecretVault(
            store, keyring, AuditLog(store), resealers=[reseal_endpoints, reseal_checkpoints]
        )
        return await vault.rotate()
    finally:
        await store.close()


def register_rotate_key(group: typer.Typer, *, hidden: bool = False) -> None:
    group.command("rotate-key", hidden=hidden, epilog=EXAMPLE)(rotate_key)


register_rotate_key(secrets_app)


def register(app: typer.Typer) -> None:
    app.add_typer(secrets_app, name="secrets")
