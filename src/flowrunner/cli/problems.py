"""Rendering of definition problems: location, message, hint and the offending source line."""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Console
from rich.markup import escape

from flowrunner.errors import Problem

_STYLE = {"error": "bold red", "warning": "bold yellow"}


def render_problems(
    console: Console, problems: Iterable[Problem], *, source_name: str, text: str
) -> None:
    lines = text.splitlines()
    for problem in problems:
        style = _STYLE.get(problem.severity, "bold")
        console.print(
            f"[bold]{escape(source_name)}:{problem.location}[/] [{style}]{problem.severity}[/] "
            f"[cyan]{escape(problem.path)}[/]: {escape(problem.message)}",
            highlight=False,
        )
        if problem.line is not None and 0 < problem.line <= len(lines):
            source_line = lines[problem.line - 1]
            column = max(1, problem.column or 1)
            console.print(f"  {problem.line:>4} | {escape(source_line)}", highlight=False)
            console.print(f"       | {' ' * (column - 1)}[{style}]^[/]", highlight=False)
        if problem.hint:
            console.print(f"       [dim]hint:[/] {escape(problem.hint)}", highlight=False)


def summary(problems: list[Problem]) -> str:
    errors = sum(1 for p in problems if p.severity == "error")
    warnings = len(problems) - errors
    return f"{errors} error{'s' if errors != 1 else ''}, {warnings} warning" + (
        "s" if warnings != 1 else ""
    )
