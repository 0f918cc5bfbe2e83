"""``flowrunner webhooks``: your outbound webhook endpoints on a server — list, create (the
secret shown once), delete, rotate the secret, send a test event, and the deliveries: list,
show one with every attempt, redeliver one or every dead one since a time."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from flowrunner.cli.client.command import command
from flowrunner.cli.client.http import segment
from flowrunner.cli.client.output import (
    Column,
    Output,
    emit_list,
    emit_record,
    print_data,
    stderr_console,
    when,
)
from flowrunner.cli.client.session import Session

webhooks_app = typer.Typer(
    help="Your outbound webhook endpoints on a server.", no_args_is_help=True
)

COLUMNS = [
    Column("ID", "id", no_wrap=True),
    Column("URL", "url"),
    Column("EVENTS", "events", lambda v: ", ".join(v) or "(all)"),
    Column("ENABLED", "enabled", lambda v: "yes" if v else "no"),
    Column("SOURCE", "source"),
    Column("CREATED", "created_at", when),
]
DELIVERY_COLUMNS = [
    Column("ID", "id", no_wrap=True),
    Column("EVENT", "event_type"),
    Column("STATUS", "status"),
    Column("ATTEMPTS", "attempts", str),
    Column("LAST CODE", "last_status_code", lambda v: "" if v is None else str(v)),
    Column("NEXT", "next_attempt_at", when),
    Column("CREATED", "created_at", when),
]


def _show_secret(session: Session, answer: dict[str, Any], note: str) -> None:
    """An answer that carries a new signing secret: for people the bare secret on stdout (to
    pipe into a password manager) and ``note`` on stderr; for scripts the whole answer."""
    if session.output is not Output.table:
        print_data(answer, session.output)
        return
    typer.echo(answer["secret"])
    stderr_console().print(note)


@command(webhooks_app, "list", example="flowrunner webhooks list")
def list_(session: Session) -> None:
    """List your endpoints (never their secrets)."""
    items = list(session.api.items("/webhooks"))
    emit_list(items, COLUMNS, session.output, empty="no webhook endpoints")


@command(
    webhooks_app,
    "create",
    example="flowrunner webhooks create https://example.test/hook --event execution.failed",
)
def create(
    session: Session,
    # Not ``url``: that is the server's address, a common option of every client command.
    target: Annotated[
        str, typer.Argument(metavar="URL", help="Where events are POSTed.", show_default=False)
    ],
    event: Annotated[
        list[str] | None, typer.Option(help="An event type (repeat; default: every event).")
    ] = None,
    flow: Annotated[
        list[str] | None, typer.Option(help="Only this flow's events (a flow id; repeat).")
    ] = None,
    description: Annotated[str, typer.Option(help="A note for people.")] = "",
) -> None:
    """Add an endpoint and print its signing secret once (it cannot be shown again)."""
    body = {
        "url": target,
        "events": event or [],
        "flow_ids": flow or [],
        "description": description,
    }
    created = session.api.post("/webhooks", json=body)
    _show_secret(
        session,
        created,
        f"created endpoint {escape(created['id'])}; the secret above is shown only this time",
    )


@command(webhooks_app, "delete", example="flowrunner webhooks delete 01a2…")
def delete(
    session: Session,
    endpoint_id: Annotated[str, typer.Argument(help="The endpoint's id (see webhooks list).")],
) -> None:
    """Delete an endpoint and its deliveries."""
    session.api.json("DELETE", f"/webhooks/{segment(endpoint_id)}")
    stderr_console().print(f"deleted endpoint {escape(endpoint_id)}")


@command(webhooks_app, "rotate-secret", example="flowrunner webhooks rotate-secret 01a2…")
def rotate_secret(
    session: Session,
    endpoint_id: Annotated[str, typer.Argument(help="The endpoint's id.")],
) -> None:
    """A new signing secret, printed once; the old one keeps signing for the grace period."""
    rotated = session.api.post(f"/webhooks/{segment(endpoint_id)}/rotate-secret")
    _show_secret(
        session, rotated, f"both secrets sign until {escape(str(rotated['secret_rotating_until']))}"
    )


@command(webhooks_app, "test", example="flowrunner webhooks test 01a2…")
def test(
    session: Session,
    endpoint_id: Annotated[str, typer.Argument(help="The endpoint's id.")],
) -> None:
    """Send a webhook.test event (see it with webhooks deliveries)."""
    delivery = session.api.post(f"/webhooks/{segment(endpoint_id)}/test")
    emit_record(delivery, session.output, fields=DELIVERY_COLUMNS)


@command(webhooks_app, "deliveries", example="flowrunner webhooks deliveries 01a2… --status dead")
def deliveries(
    session: Session,
    endpoint_id: Annotated[str, typer.Argument(help="The endpoint's id.")],
    status: Annotated[str | None, typer.Option(help="pending, delivered or dead.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
) -> None:
    """An endpoint's deliveries, newest first."""
    params = {"status": status} if status else {}
    path = f"/webhooks/{segment(endpoint_id)}/deliveries"
    items = list(session.api.items(path, params, limit=limit))
    emit_list(items, DELIVERY_COLUMNS, session.output, empty="no deliveries")


@command(webhooks_app, "delivery", example="flowrunner webhooks delivery 01a3…")
def delivery(
    session: Session,
    delivery_id: Annotated[str, typer.Argument(help="The delivery's id.")],
) -> None:
    """One delivery with every attempt (status, latency, the receiver's answer)."""
    found = session.api.get(f"/webhooks/deliveries/{segment(delivery_id)}")
    if session.output is not Output.table:
        print_data(found, session.output)
        return
    emit_record(found, session.output, fields=DELIVERY_COLUMNS)
    attempts = [
        {**a, "code": "" if a["status_code"] is None else str(a["status_code"])}
        for a in found["attempt_history"]
    ]
    emit_list(
        attempts,
        [
            Column("#", "number", str),
            Column("AT", "at", when),
            Column("CODE", "code"),
            Column("MS", "latency_ms", lambda v: f"{v:.1f}"),
            Column("ERROR", "error", lambda v: v or ""),
            Column("ANSWER", "response"),
        ],
        Output.table,
        empty="no attempts yet",
    )


@command(webhooks_app, "redeliver", example="flowrunner webhooks redeliver 01a3…")
def redeliver(
    session: Session,
    delivery_id: Annotated[str, typer.Argument(help="The delivery's id.")],
) -> None:
    """Send a delivery's event again (as a new delivery)."""
    again = session.api.post(f"/webhooks/deliveries/{segment(delivery_id)}/redeliver")
    emit_record(again, session.output, fields=DELIVERY_COLUMNS)


@command(
    webhooks_app,
    "redeliver-failed",
    example="flowrunner webhooks redeliver-failed 01a2… --since 2026-01-01T00:00:00Z",
)
def redeliver_failed(
    session: Session,
    endpoint_id: Annotated[str, typer.Argument(help="The endpoint's id.")],
    since: Annotated[str, typer.Option(help="ISO 8601 time with a zone.", show_default=False)],
) -> None:
    """Send again every dead delivery of the endpoint created since a time."""
    done = session.api.post(
        f"/webhooks/{segment(endpoint_id)}/redeliver-failed", json={"since": since}
    )
    if session.output is not Output.table:
        print_data(done, session.output)
        return
    stderr_console().print(f"redelivering {done['count']} dead deliveries")
