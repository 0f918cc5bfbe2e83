"""``flowrunner audit verify``: check every audit hash chain end to end, against its head."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from flowrunner.audit import VerifyReport
    from flowrunner.config import Settings

audit_app = typer.Typer(help="Inspect the tamper-evident audit log.", no_args_is_help=True)
EXAMPLE = "Example: flowrunner admin audit verify"

# Distinct from 1 (any error) so monitoring can tell "tampered" from "could not check".
TAMPERED_EXIT_CODE = 3


def verify() -> None:
    """Verify every record's hash and link in every chain, and each chain's end against its
    recorded head; exit 3 if a record was edited, deleted or added behind flowrunner's back."""
    import asyncio

    from flowrunner.config import load_settings

    report = asyncio.run(_verify(load_settings()))
    if not report.ok:
        for problem in report.problems:
            typer.echo(f"TAMPERED: {problem}", err=True)
        typer.echo(f"audit log verification FAILED after {report.checked} good record(s)", err=True)
        raise typer.Exit(TAMPERED_EXIT_CODE)
    typer.echo(f"audit log OK: {report.checked} record(s) in {report.chains} chain(s)")
    # Only the head can prove nothing was cut off the end: note it somewhere else.
    typer.echo(f"head: seq {report.head_seq} hash {report.head_hash}")


async def _verify(settings: Settings) -> VerifyReport:
    from flowrunner.audit import AuditLog
    from flowrunner.storage import open_store

    store = await open_store(settings)
    try:
        return await AuditLog(store).verify()
    finally:
        await store.close()


def register_verify(group: typer.Typer, *, hidden: bool = False) -> None:
    group.command("verify", hidden=hidden, epilog=EXAMPLE)(verify)


register_verify(audit_app)


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
