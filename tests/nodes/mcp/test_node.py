"""The ``mcp`` node end to end (load_flow + compile_flow + run) against a real MCP server
built with the SDK: over stdio (a child process the node starts) and over streamable HTTP on
127.0.0.1; every operation, every failure as a clear node error, cancellation ending the
child process, the allow-list, the child's environment, the SSRF guard and the bounds."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

from flowrunner.definition import compile_flow, load_flow
from flowrunner.engine import RunResult
from flowrunner.errors import DefinitionError, DestinationRefused, NodeFailed
from flowrunner.nodes.mcp import (
    McpCommandRefused,
    McpConnectionFailed,
    McpResultTooLarge,
    McpTimeout,
    McpToolFailed,
    McpUnknownTool,
)
from tests.executions.conftest import eventually
from tests.nodes.mcp.conftest import SCRIPT, http_server, process_gone, stdio_params


async def run(text: str, run_input: Any = None, **kwargs: Any) -> RunResult:
    return await compile_flow(load_flow(text)).run(run_input or {}, **kwargs)


def one(params: str) -> str:
    """A flow of one mcp node (``params`` is a YAML flow mapping's inside)."""
    return f"metadata: {{name: t}}\nnodes:\n  call:\n    type: mcp\n    params: {{{params}}}\n"


def http(url: str, extra: str) -> str:
    return f'url: "{url}", {extra}'


async def failure(text: str, **kwargs: Any) -> BaseException:
    with pytest.raises(NodeFailed) as info:
        await run(text, **kwargs)
    cause = info.value.cause
    assert cause is not None
    return cause


# --- operations, over both transports -------------------------------------------------------


@pytest.fixture(params=["stdio", "http"])
def server(request: pytest.FixtureRequest) -> str:
    """The server params of either transport."""
    if request.param == "stdio":
        return stdio_params()
    url: str = request.getfixturevalue("mcp_url")
    return f'url: "{url}"'


async def test_call_tool_returns_content_text_and_structured_result(server: str) -> None:
    result = await run(one(f"{server}, tool: add, arguments: {{a: 2, b: 40}}"))
    out = result.output
    assert out["tool"] == "add"
    assert out["text"] == "42"
    assert out["structured"] == {"result": 42}
    assert out["is_error"] is False
    assert out["content"] == [{"type": "text", "text": "42"}]
    assert result.shared["result"] is out
    assert result.shared["mcp_result"] is out  # the original's <kind>_result key


async def test_list_tools_gives_json_schema_function_definitions(server: str) -> None:
    out = (await run(one(f"{server}, operation: list_tools"))).output
    by_name = {t["function"]["name"]: t for t in out["tools"]}
    assert {"add", "echo", "fail", "sleep"} <= set(by_name)
    assert by_name["add"] == {
        "type": "function",
        "function": {
            "name": "add",
            "description": "Add two integers.",
            "parameters": {
                "type": "object",
                "properties": {
                    "a": {"title": "A", "type": "integer"},
                    "b": {"title": "B", "type": "integer"},
                },
                "required": ["a", "b"],
            },
        },
    }
    raw = {t["name"]: t for t in out["server_tools"]}
    assert raw["add"]["inputSchema"]["required"] == ["a", "b"]


async def test_read_resource_returns_its_contents(server: str) -> None:
    out = (await run(one(f'{server}, operation: read_resource, uri: "memo://greeting"'))).output
    assert out["uri"] == "memo://greeting"
    assert out["text"] == "hello from the memo"
    assert out["contents"][0]["mimeType"] == "text/plain"


async def test_get_prompt_returns_messages_ready_for_an_llm_node(server: str) -> None:
    text = one(f"{server}, operation: get_prompt, prompt: review, arguments: {{code: 'x = 1'}}")
    out = (await run(text)).output
    assert out["description"] == "Ask for a review of some code."
    assert out["messages"] == [{"role": "user", "content": "Please review this code:\nx = 1"}]


async def test_arguments_come_from_expressions(server: str) -> None:
    text = one(f'{server}, tool: echo, arguments: {{text: "${{input.word}}!"}}')
    assert (await run(text, {"word": "hi"})).output["text"] == "hi!"


# --- tool failures --------------------------------------------------------------------------


async def test_an_unknown_tool_fails_naming_the_tools_the_server_has(server: str) -> None:
    cause = await failure(one(f"{server}, tool: nope"))
    assert isinstance(cause, McpUnknownTool)
    assert "node 'call'" in str(cause)
    assert "has no tool 'nope'" in str(cause)
    assert "add, echo, fail" in str(cause)
    assert cause.code == "mcp_unknown_tool"


async def test_a_tool_error_result_fails_the_node_with_its_text(server: str) -> None:
    cause = await failure(one(f"{server}, tool: fail, arguments: {{message: boom}}"))
    assert isinstance(cause, McpToolFailed)
    assert re.search(r"node 'call': tool 'fail' returned an error: .*boom", str(cause))


async def test_a_tool_error_takes_the_error_edge() -> None:
    text = f"""\
metadata: {{name: t}}
nodes:
  call:
    type: mcp
    params: {{{stdio_params("tool: fail, arguments: {message: boom}")}}}
    next: {{error: handled}}
  handled:
    type: set
    params: {{values: {{type: "${{error.type}}", message: "${{error.message}}"}}}}
"""
    result = await run(text)
    assert result.last_node_id == "handled"
    assert result.shared["type"] == "McpToolFailed"
    assert "boom" in result.shared["message"]


async def test_a_result_over_the_limit_fails(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWRUNNER_MCP_MAX_RESULT_BYTES", "2048")
    assert (await run(one(f"{server}, tool: big, arguments: {{n: 300}}"))).output["text"]
    cause = await failure(one(f"{server}, tool: big, arguments: {{n: 5000}}"))
    assert isinstance(cause, McpResultTooLarge)
    assert "FLOWRUNNER_MCP_MAX_RESULT_BYTES" in str(cause)


async def test_an_oversize_http_answer_fails_while_it_is_read(
    mcp_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWRUNNER_MCP_MAX_RESULT_BYTES", "2048")
    cause = await failure(one(http(mcp_url, "tool: big, arguments: {n: 100000}")))
    assert isinstance(cause, McpResultTooLarge)
    assert "response body over the limit of 4096 bytes" in str(cause)


# --- the server going away, or never there ---------------------------------------------------


def session_tasks() -> list[asyncio.Task[Any]]:
    """The loop's tasks still holding (or closing) an MCP session."""
    tasks = asyncio.all_tasks()
    return [t for t in tasks if "_Pooled._hold" in getattr(t.get_coro(), "__qualname__", "")]


async def test_a_server_crash_mid_call_is_a_connection_failure() -> None:
    cause = await failure(one(stdio_params("tool: crash")))
    assert isinstance(cause, McpConnectionFailed)
    assert "closed the connection while calling tool 'crash'" in str(cause)
    # The run dropped the session at the failure, and ended only once it was closed: no
    # process or transport outlives the run.
    assert session_tasks() == []


async def test_an_http_server_dying_mid_call_is_a_connection_failure() -> None:
    with http_server() as url:  # its own: the call ends its process
        cause = await failure(one(http(url, "tool: crash")))
    assert isinstance(cause, McpConnectionFailed)
    # The session's transport runs in the task that owns the run's session, so the call
    # sees the session closed under it (a per-visit session saw httpx2's error itself).
    assert f"{url} closed the connection while calling tool 'crash'" in str(cause)


async def test_a_refused_http_connection_is_a_connection_failure() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        cause = await failure(one(f'url: "http://127.0.0.1:{port}/mcp", tool: add'))
    assert isinstance(cause, McpConnectionFailed)
    assert f"http://127.0.0.1:{port}/mcp" in str(cause)


async def test_a_command_that_does_not_exist_is_a_connection_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLOWRUNNER_MCP_STDIO_COMMANDS", "/no/such/mcp-server")
    cause = await failure(one('command: "/no/such/mcp-server", tool: add'))
    assert isinstance(cause, McpConnectionFailed)
    assert "/no/such/mcp-server" in str(cause)


async def test_a_slow_tool_times_out_and_its_server_process_ends(
    server: str, tmp_path: Path
) -> None:
    marks = f'env: {{MCP_MARK_DIR: "{tmp_path}"}}, ' if "command" in server else ""
    text = one(f"{server}, {marks}tool: sleep, arguments: {{seconds: 600}}, timeout: 1s")
    cause = await failure(text)
    assert isinstance(cause, McpTimeout)
    assert "did not finish within 1 s" in str(cause)
    pid_file = tmp_path / "pid"  # (a busy machine may not even have started it by then)
    assert not pid_file.exists() or process_gone(int(pid_file.read_text()))


async def test_cancelling_the_run_closes_the_session_and_ends_the_process(
    tmp_path: Path,
) -> None:
    marks = f'env: {{MCP_MARK_DIR: "{tmp_path}"}}'
    text = one(stdio_params(f"{marks}, tool: sleep, arguments: {{seconds: 600}}"))
    task = asyncio.create_task(run(text))

    async def sleeping() -> bool:
        return (tmp_path / "sleeping").exists()

    await eventually(sleeping, "the tool call started")
    pid = int((tmp_path / "pid").read_text())
    assert not process_gone(pid)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert process_gone(pid)


# --- what a tenant may not do --------------------------------------------------------------


async def test_a_stdio_command_off_the_allow_list_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("FLOWRUNNER_MCP_STDIO_COMMANDS")
    cause = await failure(one(stdio_params("tool: add")))
    assert isinstance(cause, McpCommandRefused)
    assert "FLOWRUNNER_MCP_STDIO_COMMANDS" in str(cause)
    assert "none is allowed" in str(cause)
    # The script is allowed, not the interpreter: `python -c ...` stays refused.
    monkeypatch.setenv("FLOWRUNNER_MCP_STDIO_COMMANDS", f"{sys.executable} {SCRIPT}")
    marker = tmp_path / "ran"
    code = f"open({str(marker)!r}, 'w')"
    cause = await failure(one(f'command: "{sys.executable}", args: ["-c", "{code}"], tool: x'))
    assert isinstance(cause, McpCommandRefused)
    assert not marker.exists()


async def test_the_child_gets_only_its_env_and_a_minimal_base(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLOWRUNNER_SECRET_KEYS", "server-only-secret")
    monkeypatch.setenv("SOME_SERVER_SETTING", "server-only")

    async def env(name: str) -> Any:
        text = one(stdio_params(f"env: {{GREETING: hi}}, tool: env, arguments: {{name: {name}}}"))
        return (await run(text)).output["structured"]["result"]

    assert await env("GREETING") == "hi"
    assert await env("PATH") == os.environ["PATH"]
    assert await env("FLOWRUNNER_SECRET_KEYS") is None
    assert await env("SOME_SERVER_SETTING") is None


async def test_http_headers_reach_the_server_and_secrets_resolve(mcp_url: str) -> None:
    text = one(
        http(
            mcp_url,
            'headers: {X-Token: "${secrets.T}"}, tool: header, arguments: {name: x-token}',
        )
    )
    out = (await run(text, secrets={"T": "s3cret-token"})).output
    assert out["structured"] == {"result": "s3cret-token"}


async def test_a_loopback_url_is_refused_by_default(
    mcp_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLOWRUNNER_HTTP_ALLOW_PRIVATE")
    cause = await failure(one(http(mcp_url, "tool: add")))
    assert isinstance(cause, DestinationRefused)
    assert "node 'call'" in str(cause)
    assert "loopback" in str(cause)


# --- pooled sessions ------------------------------------------------------------------------


async def pid_of(extra: str = "") -> int:
    params = stdio_params(f"tool: pid{', ' + extra if extra else ''}")
    result: int = (await run(one(params))).output["structured"]["result"]
    return result


async def test_each_run_has_its_own_session_by_default() -> None:
    first, second = await pid_of(), await pid_of()
    assert first != second
    assert process_gone(first)


async def test_visits_of_one_run_share_its_session_and_the_run_end_closes_it() -> None:
    """Three visits (a loop of two nodes, and a second server) start two processes, not
    three: one per server for the run; both are gone when the run returns."""
    pid = stdio_params("tool: pid")
    other = stdio_params("tool: pid, env: {VARIANT: b}")
    text = f"""metadata: {{name: t}}
nodes:
  first:
    type: mcp
    params: {{{pid}}}
    next: {{default: second}}
  second:
    type: mcp
    params: {{{pid}}}
    next: {{default: third}}
  third:
    type: mcp
    params: {{{other}}}
"""
    result = await run(text)
    pids = [result.results[n]["structured"]["result"] for n in ("first", "second", "third")]
    assert pids[0] == pids[1]
    assert pids[2] != pids[0]
    assert all(process_gone(p) for p in pids)


async def test_a_failed_run_closes_its_sessions_too() -> None:
    text = f"""metadata: {{name: t}}
nodes:
  first:
    type: mcp
    params: {{{stdio_params("tool: pid")}}}
    next: {{default: boom}}
  boom:
    type: fail
    params: {{message: stop}}
"""
    compiled = compile_flow(load_flow(text))
    seen: list[int] = []

    def observe(event: Any) -> None:
        if event.kind == "finished" and event.node_id == "first":
            seen.append(event.output["structured"]["result"])

    with pytest.raises(NodeFailed):
        await compiled.run({}, observer=observe)
    assert len(seen) == 1
    assert process_gone(seen[0])


async def test_a_pooled_session_is_reused_per_account_and_server() -> None:
    from flowrunner.fairness import ACCOUNT_ID

    first = await pid_of("pool: true")
    assert await pid_of("pool: true") == first
    assert not process_gone(first)
    token = ACCOUNT_ID.set("another-account")
    try:
        other = await pid_of("pool: true")
    finally:
        ACCOUNT_ID.reset(token)
    assert other != first


async def test_shutdown_closes_the_pooled_sessions_and_waits_for_their_processes() -> None:
    from flowrunner.nodes.connections import close_connections

    pid = await pid_of("pool: true")
    assert not process_gone(pid)
    await close_connections()  # what serve, a worker and `flowrunner run` call at the end
    assert session_tasks() == []
    assert process_gone(pid)


async def test_a_pooled_session_closes_when_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWRUNNER_MCP_POOL_IDLE_SECONDS", "0.2")
    pid = await pid_of("pool: true")

    async def gone() -> bool:
        return process_gone(pid)

    await eventually(gone, "the idle pooled server process ended")


async def test_a_full_pool_closes_the_least_recently_used_idle_session(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLOWRUNNER_MCP_POOL_SIZE", "2")  # one per account
    first = await pid_of("pool: true")
    second = await pid_of("pool: true, env: {VARIANT: b}")  # another server spec

    async def gone() -> bool:
        return process_gone(first)

    await eventually(gone, "the evicted pooled server process ended")
    assert await pid_of("pool: true, env: {VARIANT: b}") == second


async def test_an_account_at_its_pool_share_evicts_its_own_session_not_anothers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flowrunner.fairness import ACCOUNT_ID

    monkeypatch.setenv("FLOWRUNNER_MCP_POOL_SIZE", "2")  # one per account
    token = ACCOUNT_ID.set("account-b")
    try:
        b = await pid_of("pool: true")
    finally:
        ACCOUNT_ID.reset(token)
    a = await pid_of("pool: true")
    await pid_of("pool: true, env: {VARIANT: b}")  # a's second server: a's first goes

    async def gone() -> bool:
        return process_gone(a)

    await eventually(gone, "account a's first pooled server process ended")
    assert not process_gone(b)  # b's session was not a's to take


async def test_a_pooled_session_whose_server_crashed_is_replaced() -> None:
    first = await pid_of("pool: true")
    with pytest.raises(NodeFailed):
        await run(one(stdio_params("tool: crash, pool: true")))
    assert await pid_of("pool: true") != first


# --- load-time checks ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("tool: add", "give either command"),
        ('command: x, url: "http://a.example/mcp", tool: add', "give either command"),
        ("command: x, operation: read_resource", "needs param uri"),
        ("command: x, operation: get_prompt", "needs param prompt"),
        ("command: x", "needs param tool"),
        ("command: x, operation: nope", "operation"),
        ("command: x, tool: t, timeout: soon", "timeout"),
    ],
)
def test_bad_params_are_refused_when_the_flow_loads(params: str, message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        load_flow(one(params))


async def test_a_run_whose_session_waits_for_a_slot_ends_without_waiting_for_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every session slot is taken (by another run of the account): the visit times out, and
    the run ends at once — its session, still waiting for a slot, is given up, not awaited."""
    from flowrunner.nodes.mcp.pool import session_slot

    monkeypatch.setenv("FLOWRUNNER_MCP_MAX_SESSIONS", "1")
    async with session_slot(1):  # the only slot, held for the whole test
        cause = await failure(one(stdio_params("tool: pid, timeout: 0.2")))
    assert isinstance(cause, McpTimeout)
