"""``flowrunner db prune``: apply the retention policies now, or show what they would delete."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from flowrunner.config import Settings
    from flowrunner.retention import Pruned

EXAMPLE = "Example: flowrunner db prune --dry-run"


def prune(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be deleted; delete nothing.")
    ] = False,
    account: Annotated[
        str | None, typer.Option(help="Only this account (its username).", show_default=False)
    ] = None,
) -> None:
    """Delete the finished runs the retention policies let go (FLOWRUNNER_RETENTION_* and each
    account's own), with their events and checkpoints; active runs and audit records stay."""
    import asyncio

    from flowrunner.config import load_settings

    done = asyncio.run(_prune(load_settings(), dry_run=dry_run, username=account))
    verb = "would delete" if dry_run else "deleted"
    for pruned in done:
        typer.echo(f"{pruned.account_id}: {verb} {pruned.count} {'/'.join(pruned.statuses)} run(s)")
    typer.echo(f"{verb} {sum(p.count for p in done)} run(s) in total")


async def _prune(settings: Settings, *, dry_run: bool, username: str | None) -> list[Pruned]:
    # Imported here: `flowrunner --help` must not pay for storage and retention.
    from flowrunner.retention import PolicyStore, Pruner, RetentionPolicy
    from flowrunner.storage import open_store

    store = await open_store(settings)
    try:
        account_id = None
        if username is not None:
            account_id = (await store.accounts.get_by_username(username)).id
        policies = PolicyStore(store, RetentionPolicy.from_settings(settings))
        pruner = Pruner(store, policies, batch=settings.retention_batch)
        return await pruner.prune(dry_run=dry_run, account_id=account_id)
    finally:
        await store.close()
