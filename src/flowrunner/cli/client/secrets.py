"""``flowrunner secrets``: the account's vault on a server.

Values are typed where nobody sees them: a hidden prompt, a file (``--from-file``) or stdin;
``--value`` exists for scripts that have nothing better, and says so in its help. Listings
show names only; ``get`` prints a value only with ``--reveal`` (each read is audited).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from flowrunner.cli.client.command import command
from flowrunner.cli.client.dotenv import to_dotenv
from flowrunner.cli.client.errors import NOT_FOUND_OR_AUTH, ClientError, UsageProblem
from flowrunner.cli.client.http import Api, segment
from flowrunner.cli.client.output import (
    Column,
    Output,
    emit_list,
    emit_record,
    print_data,
    stderr_console,
    to_json,
    when,
)
from flowrunner.cli.client.session import Session
from flowrunner.cli.run_secrets import from_file

secrets_app = typer.Typer(help="Secrets of your account on a server.", no_args_is_help=True)

BASE = "/accounts/me/secrets"
Key = Annotated[str, typer.Argument(help="The secret's name (used as ${secrets.NAME}).")]
COLUMNS = [Column("NAME", "key"), Column("UPDATED", "updated_at", when)]


def _warn(warnings: list[str]) -> None:
    for warning in warnings:
        stderr_console().print(f"[yellow]warning:[/] {escape(warning)}")


def _all(api: Api) -> list[dict[str, Any]]:
    return list(api.items(BASE))


@command(secrets_app, "list", example="flowrunner secrets list")
def list_(session: Session) -> None:
    """List the names of your secrets (never their values)."""
    emit_list(_all(session.api), COLUMNS, session.output, empty="no secrets")


@command(secrets_app, "set", example="flowrunner secrets set SHOP_TOKEN   # prompts, hidden")
def set_(
    session: Session,
    key: Key,
    from_file_: Annotated[
        Path | None, typer.Option("--from-file", help="Read the value from this file.")
    ] = None,
    value: Annotated[
        str | None,
        typer.Option(
            "--value",
            help="The value itself (avoid: it stays in the shell history and process list).",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="The value is a JSON object (e.g. SMTP settings).")
    ] = False,
) -> None:
    """Create or replace a secret; the value comes from a hidden prompt, --from-file or stdin."""
    if from_file_ is not None and value is not None:
        raise UsageProblem("give the value one way: --from-file or --value")
    text = value if value is not None else _read_value(from_file_)
    payload: Any = text
    if as_json:
        try:
            payload = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageProblem(f"--json: the value is not valid JSON ({exc.msg})") from exc
        if not isinstance(payload, dict):
            raise UsageProblem("--json: the value must be a JSON object")
    saved = session.api.json("PUT", f"{BASE}/{segment(key)}", json={"value": payload})
    _warn(saved.get("warnings") or [])
    if session.output is not Output.table:
        print_data(saved, session.output)
        return
    stderr_console().print(f"saved secret [bold]{escape(key)}[/]")


def _read_value(path: Path | None) -> str:
    if path is not None:
        try:
            return path.read_text(encoding="utf-8").removesuffix("\n")
        except OSError as exc:
            raise UsageProblem(f"cannot read {path}: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise UsageProblem(f"{path} is not UTF-8 text") from exc
    if not sys.stdin.isatty():
        return sys.stdin.read().removesuffix("\n")
    text: str = typer.prompt("Value", hide_input=True)
    return text


@command(secrets_app, "get", example="flowrunner secrets get SHOP_TOKEN --reveal")
def get(
    session: Session,
    key: Key,
    reveal: Annotated[
        bool, typer.Option("--reveal", help="Print the value (the read is audited).")
    ] = False,
) -> None:
    """Show a secret's metadata; with --reveal print its value to stdout."""
    api = session.api
    if reveal:
        record = api.get(f"{BASE}/{segment(key)}")
        if session.output is not Output.table:
            print_data(record, session.output)
            return
        shown = record["value"]
        typer.echo(shown if isinstance(shown, str) else to_json(shown))
        return
    found = [s for s in api.items(BASE, {"prefix": key}) if s["key"] == key]
    if not found:
        raise ClientError(f"no secret named {key!r}", exit_code=NOT_FOUND_OR_AUTH)
    fields = [*COLUMNS, Column("CREATED", "created_at", when), Column("METADATA", "metadata")]
    emit_record(found[0], session.output, fields=fields)
    if session.output is Output.table:
        stderr_console().print("[dim]value hidden: --reveal prints it[/]")


@command(secrets_app, "delete", example="flowrunner secrets delete SHOP_TOKEN")
def delete(session: Session, key: Key) -> None:
    """Delete a secret."""
    session.api.json("DELETE", f"{BASE}/{segment(key)}")
    stderr_console().print(f"deleted secret [bold]{escape(key)}[/]")


@command(secrets_app, "import", example="flowrunner secrets import .env")
def import_(
    session: Session,
    file: Annotated[Path, typer.Argument(help="A dotenv file (KEY=VALUE lines) or JSON object.")],
) -> None:
    """Save every secret of a file at once: all of them or, on any error, none."""
    values = from_file(file)  # a malformed line is a usage error naming the file and line
    report = session.api.post(f"{BASE}/import", json={"secrets": values})
    _warn(report.get("warnings") or [])
    if session.output is not Output.table:
        print_data(report, session.output)
        return
    err = stderr_console()
    for label in ("added", "changed", "unchanged"):
        names = report.get(label) or []
        listed = f": {escape(', '.join(names))}" if names else ""
        err.print(f"{label} {len(names)}{listed}")


@command(secrets_app, "export", example="flowrunner secrets export --file backup.env")
def export(
    session: Session,
    file: Annotated[
        Path | None, typer.Option("--file", help="Write here (created 0600) instead of stdout.")
    ] = None,
    format_: Annotated[
        str, typer.Option("--format", help="dotenv or json (json keeps object values).")
    ] = "dotenv",
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
) -> None:
    """Write every secret with its value, in a form `secrets import` reads back."""
    if format_ not in ("dotenv", "json"):
        raise UsageProblem(f"--format must be dotenv or json, not {format_!r}")
    if file is not None and file.exists() and not force:
        raise UsageProblem(f"{file} exists: give --force to replace it")
    api = session.api
    values = {s["key"]: api.get(f"{BASE}/{segment(s['key'])}")["value"] for s in _all(api)}
    text = to_json(values) + "\n" if format_ == "json" else to_dotenv(values)
    err = stderr_console()
    err.print(
        f"[yellow]warning:[/] {len(values)} secret value(s) in plain text"
        + (f" in {escape(str(file))}" if file else "")
        + ": keep them safe, and delete the copy when done"
    )
    if file is None:
        sys.stdout.write(text)
        return
    descriptor = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as fh:
        os.fchmod(fh.fileno(), 0o600)  # an existing file keeps its mode otherwise
        fh.write(text)
