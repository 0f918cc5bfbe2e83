"""``flowrunner node-types``: the node types a flow may use on a server, and the account's own
JavaScript node types (``/api/v1/node-types/custom``).

``push FILE`` defines a type from a YAML or JSON file (name, description, params, script,
actions), or stores it as the type's next version when the account has one of that name; a
file equal to the current version stores nothing. ``get`` prints a definition back as YAML,
ready to edit and push again.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from flowrunner.cli.client.command import command
from flowrunner.cli.client.errors import NOT_FOUND_OR_AUTH, ClientError, UsageProblem
from flowrunner.cli.client.flows_ref import read_flow_file
from flowrunner.cli.client.http import Api, segment
from flowrunner.cli.client.output import (
    Column,
    Output,
    emit_list,
    print_data,
    stderr_console,
    when,
)
from flowrunner.cli.client.session import Session

node_types_app = typer.Typer(
    help="Node types a flow may use on a server, and your account's own JavaScript ones.",
    no_args_is_help=True,
)

CUSTOM = "/node-types/custom"
YAML = {"Content-Type": "application/yaml"}
DEFINITION = ("name", "description", "params", "script", "actions")
TYPE_COLUMNS = [
    Column("NAME", "name", no_wrap=True),
    Column("SOURCE", "source"),
    Column("PLUGIN", "plugin"),
    Column("VERSION", "version"),
    Column("DESCRIPTION", "description"),
]
CUSTOM_COLUMNS = [
    Column("NAME", "name", no_wrap=True),
    Column("VERSION", "version"),
    Column("ACTIONS", "actions", lambda v: ", ".join(v or [])),
    Column("SAVED", "created_at", when),
    Column("DESCRIPTION", "description"),
]
VERSION_COLUMNS = [
    Column("VERSION", "version"),
    Column("AUTHOR", "author"),
    Column("SAVED", "created_at", when),
    Column("MESSAGE", "message", lambda v: v or ""),
]
TypeName = Annotated[str, typer.Argument(help="The node type's name.", show_default=False)]
Message = Annotated[
    str | None,
    typer.Option("--message", "-m", help="A note stored with the new version.", show_default=False),
]


@command(node_types_app, "list", example="flowrunner node-types list --mine -o json")
def list_types(
    session: Session,
    mine: Annotated[
        bool, typer.Option("--mine", help="Only your account's own JavaScript node types.")
    ] = False,
) -> None:
    """Every node type: built-in, from a package, from the plugins folder, your account's."""
    if mine:
        items = session.api.get(CUSTOM)["items"]
        emit_list(items, CUSTOM_COLUMNS, session.output, empty="no node types of your own")
        return
    items = session.api.get("/node-types")["items"]
    emit_list(items, TYPE_COLUMNS, session.output, empty="no node types")


@command(node_types_app, "push", example='flowrunner node-types push greet.yaml -m "louder"')
def push(session: Session, file: Annotated[Path, typer.Argument(show_default=False)],
         message: Message = None) -> None:  # fmt: skip
    """Define a JavaScript node type from a YAML or JSON file, or store the file as the next
    version of your type of that name. A file equal to the current version stores nothing."""
    text = read_flow_file(file)
    name = _name_in(text, file)
    api = session.api
    current = _find(api, name)
    if current is None:
        saved = _send(api, "POST", CUSTOM, text, message)
        verb = "created"
    elif _same(current, text):
        saved, verb = current, "unchanged:"
    else:
        saved = _send(api, "PUT", f"{CUSTOM}/{segment(name)}", text, message)
        verb = "updated"
    if session.output is not Output.table:
        print_data(saved, session.output)
        return
    stderr_console().print(
        f"{verb} node type [bold]{escape(saved['name'])}[/] version {saved['version']}"
    )


@command(node_types_app, "get", example="flowrunner node-types get acme.greet > greet.yaml")
def get(
    session: Session,
    name: TypeName,
    version: Annotated[int | None, typer.Option(min=1, help="An older version.")] = None,
) -> None:
    """Print your node type's definition as YAML (its current version unless --version);
    -o json for the whole record."""
    path = f"{CUSTOM}/{segment(name)}"
    record = session.api.get(path if version is None else f"{path}/versions/{version}")
    if session.output is not Output.table:
        print_data(record, session.output)
        return
    definition = {k: record[k] for k in DEFINITION if record.get(k) or k in ("name", "script")}
    typer.echo(_dump_yaml(definition), nl=False)


@command(node_types_app, "versions", example="flowrunner node-types versions acme.greet")
def versions(session: Session, name: TypeName) -> None:
    """List your node type's versions, newest first."""
    items = list(session.api.items(f"{CUSTOM}/{segment(name)}/versions"))
    emit_list(items, VERSION_COLUMNS, session.output)


@command(node_types_app, "delete", example="flowrunner node-types delete acme.greet --yes")
def delete(
    session: Session,
    name: TypeName,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Delete your node type: flows can no longer use it (its versions are kept)."""
    if not yes:
        if not sys.stdin.isatty():
            raise UsageProblem("deleting needs --yes when not run from a terminal")
        typer.confirm(f"Delete node type {name}?", abort=True)
    session.api.json("DELETE", f"{CUSTOM}/{segment(name)}")
    stderr_console().print(f"deleted node type [bold]{escape(name)}[/]")


def _dump_yaml(definition: dict[str, Any]) -> str:
    """Multi-line strings (the script) as ``|`` blocks: the file reads as it was written."""
    import yaml  # here: `flowrunner --help` must not load it

    class BlockDumper(yaml.SafeDumper):
        pass

    def block_strings(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    BlockDumper.add_representer(str, block_strings)
    dumped: str = yaml.dump(definition, Dumper=BlockDumper, sort_keys=False, allow_unicode=True)
    return dumped


def _name_in(text: str, file: Path) -> str:
    import yaml

    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UsageProblem(f"{file} is not YAML or JSON: {exc}") from exc
    name = document.get("name") if isinstance(document, dict) else None
    if not isinstance(name, str) or not name:
        raise UsageProblem(f"{file} has no name: a node type definition names its type")
    return name


def _find(api: Api, name: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = api.get(f"{CUSTOM}/{segment(name)}")
    except ClientError as exc:
        if exc.exit_code != NOT_FOUND_OR_AUTH or exc.status != 404:
            raise
        return None
    return found


def _same(current: dict[str, Any], text: str) -> bool:
    """The file defines what the current version holds (the server's defaults applied)."""
    import yaml

    document = yaml.safe_load(text)
    wanted = {
        "name": document.get("name"),
        "description": document.get("description", ""),
        "params": document.get("params", {"type": "object"}),
        "script": document.get("script"),
        "actions": list(dict.fromkeys(document.get("actions") or [])),
    }
    return all(current.get(k) == v for k, v in wanted.items())


def _send(api: Api, method: str, path: str, text: str, message: str | None) -> dict[str, Any]:
    # A refusal's message names every problem by field (the server checks the whole file).
    saved: dict[str, Any] = api.json(
        method, path, content=text.encode(), headers=YAML, params={"message": message}
    )
    return saved
