"""The HTTP API: ``create_app(settings)`` builds the FastAPI application."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flowrunner.api.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    # Imported on first use: a worker uses modules of this package (plugin_choices) but serves
    # no HTTP, and building the application's routes costs it a second at every start.
    if name == "create_app":
        from flowrunner.api.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
