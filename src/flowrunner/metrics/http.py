"""HTTP request counts and latency by route template (``/api/v1/executions/{execution_id}``,
never the concrete path: ids in labels would grow the series with every run)."""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flowrunner.metrics.registry import Metrics

UNMATCHED = "<unmatched>"
log = logging.getLogger(__name__)


class HttpMetricsMiddleware:
    """Pure ASGI (no per-request task or body copy): records when the response has ended."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        # id(route) -> (route, prefix): routes are not hashable; holding the route keeps
        # its id from being reused.
        self._prefixes: dict[int, tuple[object, str]] = {}
        # The labelled series, by their labels: ``labels()`` checks and locks on every call,
        # a dict lookup does not. As bounded as the series the registry holds anyway.
        self._counts: dict[tuple[str, str, int], Any] = {}
        self._durations: dict[str, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what the client gets when the app raises before answering

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            try:
                route = self._template(scope)
                self._count(scope["method"], route, status).inc()
                self._duration(route).observe(time.perf_counter() - start)
            except Exception:  # a metrics bug must never cost a client its answer
                log.exception("recording HTTP metrics failed")

    def _count(self, method: str, route: str, status: int) -> Any:
        key = (method, route, status)
        series = self._counts.get(key)
        if series is None:
            series = self._counts[key] = self.metrics.http_requests.labels(
                method, route, str(status)
            )
        return series

    def _duration(self, route: str) -> Any:
        series = self._durations.get(route)
        if series is None:
            series = self._durations[route] = self.metrics.http_duration.labels(route)
        return series

    def _template(self, scope: Scope) -> str:
        route = scope.get("route")
        path = getattr(route, "path", None)
        if isinstance(path, str):
            return self._prefix(route, scope["path"]) + path
        # Mounted apps (the dashboard's static files, /docs assets) by their mount point.
        root = scope.get("root_path") or scope.get("app_root_path")
        return root if isinstance(root, str) and root else UNMATCHED

    def _prefix(self, route: Any, path: str) -> str:
        """A route of an included router knows its path without the prefix it was included
        under ("/flows/{flow_id}/run" under "/api/v1"): the prefix is the part of the request
        path before what the route's own pattern matches. Found once per route."""
        known = self._prefixes.get(id(route))
        if known is not None and known[0] is route:
            return known[1]
        pattern = getattr(route, "path_regex", None)
        prefix = ""
        if pattern is not None and not pattern.match(path):
            for i, char in enumerate(path):
                if char == "/" and pattern.match(path[i:]):
                    prefix = path[:i]
                    break
        self._prefixes[id(route)] = (route, prefix)
        return prefix
