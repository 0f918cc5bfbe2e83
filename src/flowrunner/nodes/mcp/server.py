"""Which MCP server to talk to (``ServerSpec``), and what the admin lets flows reach.

A server is a stdio command (``command``, ``args``, ``env``: the SDK starts it as a child
process) or a streamable-HTTP endpoint (``url``, ``headers``). ``ServerSpec.from_params``
reads one from a node's params, or from any mapping with those keys (the ``agent`` node's
MCP tools use the same keys), and names the param at fault.

Starting a process on the server is an admin's decision, not a tenant's: a stdio command
runs only when ``FLOWRUNNER_MCP_STDIO_COMMANDS`` lists it. An entry is a command line; the
node's command must equal its first word and the node's args must start with the rest, so
``python /opt/mcp/files.py`` allows that script with any further args, never ``python -c``.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from flowrunner.config import Settings
from flowrunner.durations import DURATION_HINT, parse_duration
from flowrunner.expressions import to_text
from flowrunner.nodes.mcp.errors import McpCommandRefused, McpError
from flowrunner.outbound import AddressPolicy

__all__ = ["McpSettings", "ServerSpec", "parse_allow_list"]

MAX_ARGS = 100
MAX_ENV = 100
MAX_HEADERS = 50


@dataclass(frozen=True, slots=True)
class McpSettings:
    """The admin's MCP settings, read once per node (see config.py ``mcp_*``)."""

    stdio_commands: tuple[tuple[str, ...], ...] = ()
    policy: AddressPolicy = field(default_factory=AddressPolicy)
    timeout: float = 30.0
    max_result_bytes: int = 1 << 20
    max_sessions: int = 32
    pool_size: int = 16
    pool_idle_seconds: float = 300.0

    @classmethod
    def from_settings(cls, settings: Settings) -> McpSettings:
        """ValueError naming the setting when one cannot be parsed."""
        return cls(
            stdio_commands=parse_allow_list(settings.mcp_stdio_commands),
            policy=AddressPolicy.from_settings(settings.http_allow_private, settings.http_allow),
            timeout=settings.mcp_timeout_seconds,
            max_result_bytes=settings.mcp_max_result_bytes,
            max_sessions=settings.mcp_max_sessions,
            pool_size=settings.mcp_pool_size,
            pool_idle_seconds=settings.mcp_pool_idle_seconds,
        )


def parse_allow_list(text: str) -> tuple[tuple[str, ...], ...]:
    """FLOWRUNNER_MCP_STDIO_COMMANDS: comma-separated command lines, each split as a shell
    would (quotes keep spaces in a path)."""
    entries = []
    for raw in text.split(","):
        try:
            words = tuple(shlex.split(raw))
        except ValueError as exc:
            raise ValueError(f"FLOWRUNNER_MCP_STDIO_COMMANDS: {raw.strip()!r}: {exc}") from exc
        if words:
            entries.append(words)
    return tuple(entries)


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """One MCP server: a stdio command or an HTTP endpoint (hashable: the pool's key)."""

    transport: Literal["stdio", "http"]
    command: str = ""
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    url: str = ""
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_params(cls, params: Mapping[str, Any], where: str) -> ServerSpec:
        """The server ``params`` name; McpError naming ``where`` and the param otherwise."""

        def fail(name: str, message: str) -> McpError:
            return McpError(f"{where}: param {name}: {message}", reason="invalid_params")

        command, url = params.get("command"), params.get("url")
        if (command is None) == (url is None):
            raise fail("command", "give either command (a stdio server) or url (an HTTP server)")
        if command is not None:
            if not isinstance(command, str) or not command.strip():
                raise fail("command", "must be a non-empty string")
            args = params.get("args") or []
            if not isinstance(args, list) or len(args) > MAX_ARGS:
                raise fail("args", f"must be a list of at most {MAX_ARGS} strings")
            return cls(
                "stdio",
                command=command.strip(),
                args=tuple(to_text(a) for a in args),
                env=_pairs(params.get("env"), "env", MAX_ENV, fail),
            )
        if not isinstance(url, str) or urlsplit(url.strip()).scheme not in ("http", "https"):
            raise fail("url", "must be an http:// or https:// URL")
        return cls(
            "http",
            url=url.strip(),
            headers=_pairs(params.get("headers"), "headers", MAX_HEADERS, fail),
        )

    def describe(self) -> str:
        """The server for messages: the command line, or the URL without credentials or
        query (header and env values, which may be secrets, are never shown)."""
        if self.transport == "stdio":
            return shlex.join((self.command, *self.args))[:300]
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path}"[:300]

    def check_allowed(self, allowed: tuple[tuple[str, ...], ...], where: str) -> None:
        """McpCommandRefused unless the admin's allow-list covers this stdio command."""
        if self.transport != "stdio":
            return
        line = (self.command, *self.args)
        if any(line[: len(entry)] == entry for entry in allowed):
            return
        listed = "none is allowed" if not allowed else f"{len(allowed)} allowed"
        raise McpCommandRefused(
            f"{where}: the stdio command {self.command!r} with these args is not on the "
            f"server's allow-list ({listed}; an admin sets FLOWRUNNER_MCP_STDIO_COMMANDS)",
            command=self.command,
        )


def parse_timeout(value: Any, default: float, where: str) -> float:
    """A ``timeout`` param (seconds or a duration) or ``default``; McpError when invalid."""
    if value is None:
        return default
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise McpError(f"{where}: param timeout: {exc} ({DURATION_HINT})") from exc
    if seconds <= 0:
        raise McpError(f"{where}: param timeout: must be more than 0")
    return seconds


def _pairs(value: Any, name: str, limit: int, fail: Any) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping) or len(value) > limit:
        raise fail(name, f"must be a mapping of at most {limit} names to strings")
    pairs = []
    for key, item in value.items():
        if not isinstance(key, str) or not key or isinstance(item, Mapping | list):
            raise fail(name, f"{key!r}: must be a name mapped to a string")
        text = "" if item is None else to_text(item)
        # A header value cannot span lines (nor can an env value hide a NUL): refuse rather
        # than let httpx or the kernel reject it with a less helpful message.
        if "\n" in text or "\r" in text or "\0" in text:
            raise fail(name, f"{key!r}: the value contains a line break or NUL")
        pairs.append((key, text))
    return tuple(pairs)
