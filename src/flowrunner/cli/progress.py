"""Live progress of a local run: one line per node event, a spinner on the running node."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.status import Status

if TYPE_CHECKING:
    from flowrunner.engine import NodeEvent

_LEVEL_STYLE = {
    "debug": "dim",
    "info": "blue",
    "warning": "yellow",
    "warn": "yellow",
    "error": "red",
}


def _name(event: NodeEvent) -> str:
    return escape("/".join((*event.flow_path, event.node_id)))


class ProgressView:
    """An engine observer that draws node events on a (stderr) console."""

    def __init__(self, console: Console, mask: Callable[[str], str] = str) -> None:
        self._console = console
        # Hides the run's secret values in every line printed (log messages, errors).
        self._mask = mask
        self._status: Status | None = None
        self.finished = 0

    def __enter__(self) -> ProgressView:
        if self._console.is_terminal:
            self._status = self._console.status("starting…")
            self._status.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._status is not None:
            self._status.stop()

    def __call__(self, event: NodeEvent) -> None:
        mask = self._mask
        print_ = self._console.print
        if event.kind == "started":
            if event.item_index is None and self._status is not None:
                self._status.update(f"running [bold]{_name(event)}[/]")
        elif event.kind == "finished":
            if event.item_index is not None:
                return
            self.finished += 1
            took = f"{(event.duration or 0) * 1000:.1f} ms"
            action = f" → {escape(event.action)}" if event.action not in (None, "default") else ""
            print_(f"[green]✓[/] {_name(event)} [dim]{took}{action}[/]", highlight=False)
        elif event.kind == "retrying":
            # The event announces the next attempt; the one that failed is the one before.
            wait = float((event.fields or {}).get("wait") or 0)
            then = f"retrying in {wait:g}s" if wait > 0 else "retrying"
            item = f" item {event.item_index}" if event.item_index is not None else ""
            # A server's stored retry event does not carry the error (its log lines do).
            why = f": {escape(mask(str(event.error)))}" if event.error is not None else ""
            print_(
                f"[yellow]↻[/] {_name(event)}{item} attempt {event.attempt - 1} failed{why} "
                f"[dim]({then}, attempt {event.attempt})[/]",
                highlight=False,
            )
        elif event.kind in ("failed", "canceled"):
            if event.item_index is not None:
                return
            print_(
                f"[red]✗[/] {_name(event)} {event.kind}: {escape(mask(str(event.error)))}",
                highlight=False,
            )
        elif event.kind == "log":
            style = _LEVEL_STYLE.get(event.level or "info", "blue")
            print_(
                f"  [{style}]{escape(event.level or 'info')}[/] [dim]{_name(event)}[/] "
                f"{escape(mask(event.message or ''))}",
                highlight=False,
            )
