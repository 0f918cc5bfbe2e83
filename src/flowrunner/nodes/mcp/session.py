"""An open MCP session, and the four operations flows use, in JSON a run can keep.

``open_session(spec, settings, where)`` connects with the official ``mcp`` SDK (``Client``)
and yields an ``McpSession``; leaving it closes the session (for stdio: stdin closed, then
the child terminated, then killed, all bounded by the SDK; a cancelled caller too). This is
the layer the ``mcp`` node and the ``agent`` node's MCP tools share:

- ``list_tools()`` → the server's tools (the SDK's ``Tool`` objects, every page);
  ``function_definition(tool)`` → the OpenAI-shaped JSON-Schema function definition an
  ``llm``/``agent`` ``tools`` list takes;
- ``call_tool(name, arguments)`` → ``{content, text, structured, is_error}`` (an error
  result is returned, not raised: an agent feeds it back to its model; ``raise_for_tool``
  turns it into ``McpUnknownTool``/``McpToolFailed`` for a node);
- ``read_resource(uri)`` → ``{uri, contents, text}``;
- ``get_prompt(name, arguments)`` → ``{name, description, messages}``.

Every foreign error (the SDK's ``MCPError``, httpx2's, an ``OSError`` starting a command,
an exception group from the SDK's task groups) leaves as an ``McpError`` naming the server;
every result is bounded by ``max_result_bytes``.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from flowrunner.errors import DestinationRefused, FlowrunnerError
from flowrunner.nodes.mcp.errors import (
    McpConnectionFailed,
    McpError,
    McpRequestFailed,
    McpResultTooLarge,
    McpToolFailed,
    McpUnknownTool,
)
from flowrunner.nodes.mcp.server import McpSettings, ServerSpec

# The mcp SDK (~100 modules, ~50 MB of a server's idle RSS with its pydantic models) is
# imported by the first session, not when the node types are registered at start.
if TYPE_CHECKING:
    import mcp_types
    from mcp import Client

__all__ = ["McpSession", "function_definition", "open_session"]

_T = TypeVar("_T")

MAX_TOOL_PAGES = 20  # a server paging forever must not hang a listing
MAX_TEXT_IN_MESSAGE = 500


@asynccontextmanager
async def open_session(
    spec: ServerSpec, settings: McpSettings, where: str
) -> AsyncIterator[McpSession]:
    """A session with ``spec``'s server for the body; McpError when it cannot be had.

    The caller bounds the time (connecting is a request like any other); a stdio command
    must be on the admin's allow-list.
    """
    spec.check_allowed(settings.stdio_commands, where)
    try:
        async with AsyncExitStack() as stack:
            try:
                client = await _connect(stack, spec, settings)
            except BaseException as exc:
                _fail(exc, spec, where, "connecting")
            yield McpSession(client, spec, settings, where)
    except BaseExceptionGroup as group:
        # The SDK's task groups wrap whatever ended the body (our own McpError included).
        _fail(group, spec, where, "using the session")


async def _connect(stack: AsyncExitStack, spec: ServerSpec, settings: McpSettings) -> Client:
    import mcp_types
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters, stdio_client
    from mcp.client.streamable_http import streamable_http_client

    from flowrunner.outbound.httpx2_client import guarded_httpx2_client

    transport: Any
    if spec.transport == "stdio":
        # The child's stderr goes nowhere: it is the tenant's output, and unbounded.
        devnull = stack.enter_context(open(os.devnull, "w"))  # noqa: ASYNC230, SIM115
        transport = stdio_client(
            StdioServerParameters(command=spec.command, args=list(spec.args), env=dict(spec.env)),
            errlog=devnull,
        )
    else:
        http = guarded_httpx2_client(
            settings.policy,
            headers=dict(spec.headers),
            timeout=settings.timeout,
            # The JSON-RPC answer holds a result's content and its structured form, both.
            max_response_bytes=settings.max_result_bytes * 2,
        )
        await stack.enter_async_context(http)
        transport = streamable_http_client(
            spec.url, http_client=http, max_sse_event_size=settings.max_result_bytes * 2
        )
    info = mcp_types.Implementation(name="flowrunner", version="1")
    client = Client(transport, cache=None, client_info=info)
    await stack.enter_async_context(client)
    return client


class McpSession:
    """One connected MCP session (several tasks may use it at once: requests have ids)."""

    __slots__ = ("_client", "_settings", "spec", "where")

    def __init__(self, client: Client, spec: ServerSpec, settings: McpSettings, where: str):
        self._client = client
        self._settings = settings
        self.spec = spec
        self.where = where

    def for_node(self, where: str) -> McpSession:
        """This session, naming ``where`` in its errors (a pooled session serves many)."""
        return McpSession(self._client, self.spec, self._settings, where)

    async def list_tools(self) -> list[mcp_types.Tool]:
        tools: list[mcp_types.Tool] = []
        cursor: str | None = None
        for _page in range(MAX_TOOL_PAGES):
            try:
                page = await self._client.list_tools(cursor=cursor)
            except BaseException as exc:
                _fail(exc, self.spec, self.where, "listing tools")
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
        self._bound([t.model_dump(mode="json", by_alias=True) for t in tools], "the tool list")
        return tools

    async def call_tool(self, name: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """``{content, text, structured, is_error}``; an error result is returned."""
        try:
            result = await self._client.call_tool(name, dict(arguments))
        except BaseException as exc:
            _fail(exc, self.spec, self.where, f"calling tool '{name}'")
        content = [_dump(block) for block in result.content]
        output = {
            "content": content,
            "text": _joined_text(result.content),
            "structured": result.structured_content,
            "is_error": bool(result.is_error),
        }
        return self._bound(output, f"tool '{name}''s result")

    async def raise_for_tool(self, name: str, result: Mapping[str, Any]) -> None:
        """McpUnknownTool when the server has no tool ``name``, else McpToolFailed, for an
        error result (the listing is only asked for then: a call costs one round trip)."""
        if not result.get("is_error"):
            return
        text = str(result.get("text") or "")[:MAX_TEXT_IN_MESSAGE]
        try:
            names = [t.name for t in await self.list_tools()]
        except McpError:
            names = None
        if names is not None and name not in names:
            shown = ", ".join(names[:30]) + (", …" if len(names) > 30 else "")
            raise McpUnknownTool(
                f"{self.where}: the MCP server {self.spec.describe()} has no tool '{name}' "
                f"(it has: {shown or 'no tools'})",
                tool=name,
            )
        raise McpToolFailed(
            f"{self.where}: tool '{name}' returned an error: {text or '(no text)'}", tool=name
        )

    async def read_resource(self, uri: str) -> dict[str, Any]:
        try:
            result = await self._client.read_resource(uri)
        except BaseException as exc:
            _fail(exc, self.spec, self.where, f"reading '{uri}'")
        contents = [_dump(item) for item in result.contents]
        text = "".join(str(c["text"]) for c in contents if isinstance(c.get("text"), str))
        return self._bound({"uri": uri, "contents": contents, "text": text}, "the resource")

    async def get_prompt(self, name: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
        args = {key: _argument_text(value) for key, value in arguments.items()}
        try:
            result = await self._client.get_prompt(name, args)
        except BaseException as exc:
            _fail(exc, self.spec, self.where, f"getting prompt '{name}'")
        messages = [
            {
                "role": message.role,
                # Text as a plain string, ready for an llm node's messages; other parts whole.
                "content": message.content.text
                if isinstance(message.content, _text_content())
                else _dump(message.content),
            }
            for message in result.messages
        ]
        output = {"name": name, "description": result.description, "messages": messages}
        return self._bound(output, f"prompt '{name}'")

    def _bound(self, value: _T, what: str) -> _T:
        limit = self._settings.max_result_bytes
        size = len(json.dumps(value, default=str, ensure_ascii=False).encode())
        if size > limit:
            raise McpResultTooLarge(
                f"{self.where}: {what} from {self.spec.describe()} is {size} bytes, over the "
                f"limit of {limit} (FLOWRUNNER_MCP_MAX_RESULT_BYTES)",
                size=size,
            )
        return value


def function_definition(tool: mcp_types.Tool) -> dict[str, Any]:
    """An MCP tool as a JSON-Schema function definition in the OpenAI wire shape."""
    schema = dict(tool.input_schema or {"type": "object", "properties": {}})
    schema.pop("title", None)  # pydantic's generated "addArguments": noise to a model
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description or tool.title or "",
            "parameters": schema,
        },
    }


def _fail(exc: BaseException, spec: ServerSpec, where: str, doing: str) -> NoReturn:
    """Raise what ``exc`` (being handled) stands for; a cancellation passes unchanged."""
    error = translate(exc, spec, where, doing)
    if error is exc:
        raise exc
    raise error from exc


def translate(exc: BaseException, spec: ServerSpec, where: str, doing: str) -> BaseException:
    """The McpError an SDK failure stands for (a cancellation or our own error unchanged)."""
    leaf = _cause(exc)
    if isinstance(leaf, FlowrunnerError | KeyboardInterrupt | SystemExit):
        if isinstance(leaf, DestinationRefused):
            return DestinationRefused(f"{where}: {leaf.message}", **leaf.context)
        return leaf
    if not isinstance(leaf, Exception):  # CancelledError and the like: not a failure
        return exc
    server = spec.describe()
    # Loaded already when a session failed; imported here only for the isinstance checks.
    import httpx2
    import mcp_types
    from mcp.shared.exceptions import MCPError

    from flowrunner.outbound.httpx2_client import OVERSIZE, ResponseTooLarge

    if isinstance(leaf, MCPError | ResponseTooLarge) and OVERSIZE in str(leaf):
        text = str(leaf)
        why = text[text.index(OVERSIZE) :].split(")", 1)[0][:200]
        return McpResultTooLarge(
            f"{where}: the answer of {server} while {doing}: {why} (twice "
            "FLOWRUNNER_MCP_MAX_RESULT_BYTES, for the raw answer)"
        )
    if isinstance(leaf, MCPError):
        if leaf.code == mcp_types.CONNECTION_CLOSED:
            return McpConnectionFailed(
                f"{where}: the MCP server {server} closed the connection while {doing} "
                "(it exited or crashed)"
            )
        if leaf.code == mcp_types.REQUEST_TIMEOUT:
            return McpConnectionFailed(f"{where}: {server} timed out while {doing}")
        return McpRequestFailed(
            f"{where}: {server} refused while {doing}: {leaf.error.message[:MAX_TEXT_IN_MESSAGE]}",
            mcp_code=leaf.code,
        )
    if isinstance(leaf, httpx2.TimeoutException):
        return McpConnectionFailed(f"{where}: {server}: timed out while {doing}")
    if isinstance(leaf, httpx2.HTTPStatusError):
        return McpConnectionFailed(
            f"{where}: {server} answered HTTP {leaf.response.status_code} while {doing}"
        )
    if isinstance(leaf, httpx2.HTTPError):
        return McpConnectionFailed(f"{where}: {server}: connection failed while {doing}: {leaf}")
    if isinstance(leaf, OSError):
        why = leaf.strerror or str(leaf)
        return McpConnectionFailed(f"{where}: cannot start or reach {server}: {why}")
    return McpError(f"{where}: {server}: {type(leaf).__name__} while {doing}: {leaf}"[:1000])


def _cause(exc: BaseException) -> BaseException:
    """The first leaf of an exception group (the SDK's task groups wrap what failed)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _dump(block: Any) -> dict[str, Any]:
    dumped: dict[str, Any] = block.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dumped


def _joined_text(blocks: list[Any]) -> str:
    return "\n".join(b.text for b in blocks if isinstance(b, _text_content()))


def _text_content() -> type[mcp_types.TextContent]:
    import mcp_types

    return mcp_types.TextContent


def _argument_text(value: Any) -> str:
    """Prompt arguments are strings on the wire; other JSON values are sent as JSON."""
    return value if isinstance(value, str) else json.dumps(value)
