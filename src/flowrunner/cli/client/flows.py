"""``flowrunner flows``: the flows stored on a server — list, get, create or push, versions."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.text import Text

from flowrunner.cli.client.command import command
from flowrunner.cli.client.errors import ClientError, UsageProblem
from flowrunner.cli.client.flows_ref import find_flow, name_in, read_flow_file, resolve_flow
from flowrunner.cli.client.http import Api, segment
from flowrunner.cli.client.output import (
    Column,
    Output,
    emit_list,
    print_data,
    stderr_console,
    stdout_console,
    when,
)
from flowrunner.cli.client.problems import problems_of, reraise_with_problems, show_problems
from flowrunner.cli.client.session import Session

flows_app = typer.Typer(help="Flows stored on a server.", no_args_is_help=True)

YAML = {"Content-Type": "application/yaml"}
FLOW_COLUMNS = [
    Column("ID", "id", no_wrap=True),
    Column("NAME", "name"),
    Column("VERSION", "version"),
    Column("TAGS", "tags", lambda v: ", ".join(v or ())),
    Column("UPDATED", "updated_at", when),
]
FlowRef = Annotated[str, typer.Argument(help="The flow's id or name.", show_default=False)]
FlowFile = Annotated[Path, typer.Argument(help="A flow's YAML file.", show_default=False)]
Message = Annotated[
    str | None,
    typer.Option("--message", "-m", help="A note stored with the new version.", show_default=False),
]
Tags = Annotated[
    list[str] | None, typer.Option("--tag", "-t", help="A tag (repeatable).", show_default=False)
]


def _saved(session: Session, flow: dict[str, Any], verb: str) -> None:
    if session.output is not Output.table:
        print_data(flow, session.output)
        return
    stderr_console().print(
        f"{verb} flow [bold]{escape(flow['name'])}[/] ({escape(flow['id'])}) "
        f"version {flow['version']}"
    )


def _send(
    api: Api, method: str, path: str, text: str, source: Path, message: str | None = None
) -> dict[str, Any]:
    try:
        saved: dict[str, Any] = api.json(
            method, path, content=text.encode(), headers=YAML, params={"message": message}
        )
    except ClientError as exc:
        reraise_with_problems(exc, stderr_console(), source=str(source), text=text)
        raise
    return saved


@command(flows_app, "list", example="flowrunner flows list --name order --tag prod -o json")
def list_(
    session: Session,
    name: Annotated[str | None, typer.Option(help="Name contains (any case).")] = None,
    description: Annotated[str | None, typer.Option(help="Description contains.")] = None,
    tag: Tags = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many flows.")] = 100,
) -> None:
    """List the account's flows, most recently created first."""
    params = {"name": name, "description": description, "tag": tag or None}
    items = list(session.api.items("/flows", params, limit=limit))
    emit_list(items, FLOW_COLUMNS, session.output, empty="no flows")


@command(flows_app, "get", example="flowrunner flows get 'Order sync' > order-sync.yaml")
def get(
    session: Session,
    flow: FlowRef,
    version: Annotated[int | None, typer.Option(min=1, help="An older version.")] = None,
) -> None:
    """Print a flow's YAML (its current version unless --version); -o json for its record."""
    found = resolve_flow(session.api, flow)
    record = found
    if version is not None:
        record = session.api.get(f"/flows/{segment(found['id'])}/versions/{version}")
    if session.output is Output.table:
        typer.echo(record["content"], nl=not record["content"].endswith("\n"))
    else:
        print_data(record, session.output)


@command(flows_app, "create", example="flowrunner flows create order-sync.yaml --tag prod")
def create(
    session: Session,
    file: FlowFile,
    name: Annotated[str | None, typer.Option(help="Default: metadata.name.")] = None,
    description: Annotated[str | None, typer.Option(help="Default: the YAML's.")] = None,
    tag: Tags = None,
    message: Message = None,
) -> None:
    """Store a flow file as a new flow (version 1)."""
    text = read_flow_file(file)
    api = session.api
    if name is None and description is None and not tag:
        flow = _send(api, "POST", "/flows", text, file, message)
    else:
        body = {
            "content": text, "name": name, "description": description, "tags": tag,
            "message": message,
        }  # fmt: skip
        try:
            flow = api.post("/flows", json={k: v for k, v in body.items() if v is not None})
        except ClientError as exc:
            reraise_with_problems(exc, stderr_console(), source=str(file), text=text)
            raise
    _saved(session, flow, "created")


@command(flows_app, "push", example='flowrunner flows push order-sync.yaml -m "retry the fetch"')
def push(
    session: Session,
    file: FlowFile,
    flow: Annotated[
        str | None, typer.Option("--flow", help="The flow to update (default: by metadata.name).")
    ] = None,
    message: Message = None,
) -> None:
    """Create the flow, or store the file as its next version if it exists (by name or --flow).

    A file equal to the current version stores nothing.
    """
    text = read_flow_file(file)
    api = session.api
    ref = flow or name_in(text)
    if ref is None:
        raise UsageProblem(f"{file} has no metadata.name: name the flow with --flow")
    existing = find_flow(api, ref)
    if existing is None:
        if flow is not None:
            raise ClientError(f"no flow with the id or name {flow!r}", exit_code=3)
        _saved(session, _send(api, "POST", "/flows", text, file, message), "created")
    elif existing["content"] == text:
        _saved(session, existing, "unchanged:")
    else:
        path = f"/flows/{segment(existing['id'])}"
        _saved(session, _send(api, "PUT", path, text, file, message), "updated")


@command(flows_app, "update", example="flowrunner flows update 'Order sync' --tag prod --tag eu")
def update(
    session: Session,
    flow: FlowRef,
    file: Annotated[
        Path | None, typer.Argument(help="New YAML: stored as the next version.")
    ] = None,
    name: Annotated[str | None, typer.Option(help="New name.")] = None,
    description: Annotated[str | None, typer.Option(help="New description.")] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", "-t", help="Replace the tags (repeatable).")
    ] = None,
    message: Message = None,
) -> None:
    """Change a flow's name, description or tags, and/or store a file as its next version."""
    if file is None and name is None and description is None and tag is None:
        raise UsageProblem("nothing to change: give a FILE, --name, --description or --tag")
    if file is None and message is not None:
        raise UsageProblem("--message goes with a new version: give a FILE")
    api = session.api
    found = resolve_flow(api, flow)
    path = f"/flows/{segment(found['id'])}"
    result = found
    if file is not None:
        result = _send(api, "PUT", path, read_flow_file(file), file, message)
    patch = {"name": name, "description": description, "tags": tag}
    if any(v is not None for v in patch.values()):
        changes = {k: v for k, v in patch.items() if v is not None}
        result = {**result, **api.json("PATCH", path, json=changes)}
    _saved(session, result, "updated")


@command(flows_app, "delete", example="flowrunner flows delete 'Order sync' --yes")
def delete(
    session: Session,
    flow: FlowRef,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Delete a flow (its past runs stay readable)."""
    found = resolve_flow(session.api, flow)
    if not yes:
        if not _interactive():
            raise UsageProblem("deleting needs --yes when not run from a terminal")
        typer.confirm(f"Delete flow {found['name']} ({found['id']})?", abort=True)
    session.api.json("DELETE", f"/flows/{segment(found['id'])}")
    stderr_console().print(f"deleted flow [bold]{escape(found['name'])}[/] ({found['id']})")


def _interactive() -> bool:
    return sys.stdin.isatty()


@command(flows_app, "versions", example="flowrunner flows versions 'Order sync'")
def versions(session: Session, flow: FlowRef) -> None:
    """List a flow's versions, newest first."""
    api = session.api
    found = resolve_flow(api, flow)
    items = list(api.items(f"/flows/{segment(found['id'])}/versions"))
    columns = [
        Column("VERSION", "number"),
        Column("AUTHOR", "author"),
        Column("CREATED", "created_at", when),
        Column("CHECKSUM", "checksum", lambda v: str(v)[:12]),
        Column("MESSAGE", "message", lambda v: v or ""),
    ]
    emit_list(items, columns, session.output)


@command(flows_app, "diff", example="flowrunner flows diff 'Order sync' 1 2")
def diff(
    session: Session,
    flow: FlowRef,
    from_version: Annotated[int, typer.Argument(min=1, help="The older version.")],
    to_version: Annotated[int, typer.Argument(min=1, help="The newer version.")],
) -> None:
    """Show what changed between two versions (a unified diff, coloured on a terminal)."""
    api = session.api
    found = resolve_flow(api, flow)
    params = {"from": from_version, "to": to_version}
    result = api.get(f"/flows/{segment(found['id'])}/diff", params=params)
    if session.output is not Output.table:
        print_data(result, session.output)
        return
    if not result["diff"]:
        stderr_console().print(f"versions {from_version} and {to_version} are identical")
        return
    console = stdout_console()
    for line in result["diff"].splitlines():
        style = ""
        if line.startswith(("+++", "---")):
            style = "bold"
        elif line.startswith("+"):
            style = "green"
        elif line.startswith("-"):
            style = "red"
        elif line.startswith("@@"):
            style = "cyan"
        console.print(Text(line, style=style), soft_wrap=True)


@command(flows_app, "restore", example="flowrunner flows restore 'Order sync' 2")
def restore(
    session: Session,
    flow: FlowRef,
    version: Annotated[int, typer.Argument(min=1, help="The version to make current again.")],
    message: Message = None,
) -> None:
    """Make an older version current again (stored as a new version; its message defaults to
    "restored version N")."""
    api = session.api
    found = resolve_flow(api, flow)
    restored = api.post(
        f"/flows/{segment(found['id'])}/versions/{version}/restore", params={"message": message}
    )
    _saved(session, restored, f"restored version {version} of")


@command(flows_app, "validate", example="flowrunner flows validate order-sync.yaml")
def validate(session: Session, file: FlowFile) -> None:
    """Check a flow file against the server's node types, without saving it. Exit 1 if invalid."""
    text = read_flow_file(file)
    report = session.api.post("/flows/validate", content=text.encode(), headers=YAML)
    if session.output is not Output.table:
        print_data(report, session.output)
    else:
        show_problems(
            stderr_console(), problems_of(report["problems"]), source=str(file), text=text
        )
    if not report["valid"]:
        raise typer.Exit(1)
