"""A server's ``invalid_flow`` answer drawn like local ``validate``: line, caret and hint."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.markup import escape

from flowrunner.cli.client.errors import ClientError
from flowrunner.cli.problems import render_problems, summary
from flowrunner.errors import Problem


def problems_of(items: Iterable[Any]) -> list[Problem]:
    found = []
    for item in items:
        if isinstance(item, dict) and "message" in item:
            found.append(
                Problem(
                    path=str(item.get("path") or ""),
                    message=str(item["message"]),
                    line=item.get("line"),
                    column=item.get("column"),
                    severity="warning" if item.get("severity") == "warning" else "error",
                    hint=item.get("hint"),
                )
            )
    return found


def show_problems(console: Console, problems: list[Problem], *, source: str, text: str) -> bool:
    """Print every problem; True when none is an error."""
    render_problems(console, problems, source_name=source, text=text)
    ok = not any(p.severity == "error" for p in problems)
    mark = "[green]✓[/]" if ok else "[red]✗[/]"
    verdict = "valid" if ok else "invalid"
    console.print(f"{mark} {escape(source)}: {verdict} ({summary(problems)})", highlight=False)
    return ok


def reraise_with_problems(exc: ClientError, console: Console, *, source: str, text: str) -> None:
    """For an ``invalid_flow`` refusal: draw its problems against the local file first."""
    if exc.error_code == "invalid_flow":
        problems = problems_of(exc.context.get("details") or ())
        if problems:
            show_problems(console, problems, source=source, text=text)
    raise exc
