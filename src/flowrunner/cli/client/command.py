"""The decorator every client command is declared with.

It adds the connection options (``--profile``, ``--url``, ``--token``, ``--config``,
``--output``) to the command's own, opens a Session from them, hands it to the function as
its first argument, and closes it after. The example given becomes the help's epilog, so
every ``--help`` ends with one.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from flowrunner.cli.client.output import Output
from flowrunner.cli.client.session import open_session

F = TypeVar("F", bound=Callable[..., Any])
PANEL = "Connection and output"

_COMMON = [
    inspect.Parameter(
        "profile",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[
            str | None,
            typer.Option(
                "--profile",
                help="Profile of the config file to use (default: the current one).",
                rich_help_panel=PANEL,
            ),
        ],
    ),
    inspect.Parameter(
        "url",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[
            str | None,
            typer.Option(
                "--url",
                help="Server URL (env FLOWRUNNER_URL), e.g. http://127.0.0.1:8080.",
                rich_help_panel=PANEL,
            ),
        ],
    ),
    inspect.Parameter(
        "token",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[
            str | None,
            typer.Option(
                "--token",
                help="API token (env FLOWRUNNER_TOKEN; visible in the process list).",
                rich_help_panel=PANEL,
            ),
        ],
    ),
    inspect.Parameter(
        "config",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[
            Path | None,
            typer.Option(
                "--config",
                help="Profiles file (env FLOWRUNNER_CLI_CONFIG; "
                "default ~/.config/flowrunner/config.toml).",
                rich_help_panel=PANEL,
            ),
        ],
    ),
    inspect.Parameter(
        "output",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[
            Output | None,
            typer.Option(
                "--output", "-o", help="table (default), json or yaml.", rich_help_panel=PANEL
            ),
        ],
    ),
]
COMMON_NAMES = tuple(p.name for p in _COMMON)


def command(group: typer.Typer, name: str, *, example: str) -> Callable[[F], F]:
    """Register ``fn(session, ...)`` as ``name`` in ``group`` with the connection options."""

    def register(fn: F) -> F:
        signature = inspect.signature(fn, eval_str=True)
        own = [
            p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
            for p in list(signature.parameters.values())[1:]  # the first is the session
        ]

        @functools.wraps(fn)
        def run(**kwargs: Any) -> Any:
            options = {key: kwargs.pop(key) for key in COMMON_NAMES}
            session = open_session(**options)
            try:
                return fn(session, **kwargs)
            finally:
                session.close()

        run.__signature__ = signature.replace(parameters=[*own, *_COMMON])  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in [*own, *_COMMON]}
        group.command(name, epilog=f"Example: {example}")(run)
        return fn

    return register
