"""``http.request`` end to end (load_flow + compile_flow + run) against a real HTTP server on
127.0.0.1: requests as the params describe them, responses as outputs, routing by status,
and every failure mode as a clear node error."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from flowrunner.definition import compile_flow, load_flow
from flowrunner.engine import RunResult
from flowrunner.errors import DefinitionError, DestinationRefused, NodeFailed
from flowrunner.fairness import ACCOUNT_ID
from flowrunner.nodes.http import HttpRequestFailed
from flowrunner.nodes.http_params import ParamError
from tests.conftest import HANG_GUARD
from tests.http_server import BASIC, TOKEN, TestServer, running_server


@pytest.fixture(scope="module")
def server() -> Iterator[TestServer]:
    with running_server() as running:
        yield running


@pytest.fixture(autouse=True)
def allow_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    # The test server is on 127.0.0.1, which the default policy refuses (tested below).
    monkeypatch.setenv("FLOWRUNNER_HTTP_ALLOW_PRIVATE", "true")
    monkeypatch.delenv("FLOWRUNNER_HTTP_ALLOW", raising=False)


async def run(text: str, run_input: Any = None, **kwargs: Any) -> RunResult:
    definition = load_flow(text)
    return await compile_flow(definition).run(run_input or {}, **kwargs)


def one(params: str, edges: str = "") -> str:
    """A flow of one http.request node (``params`` is a YAML flow mapping's inside)."""
    nxt = f"\n    next: {{{edges}}}" if edges else ""
    head = "metadata: {name: t}\nnodes:\n  fetch:\n    type: http.request\n"
    return f"{head}    params: {{{params}}}{nxt}\n"


async def test_get_with_query_and_headers_gives_the_originals_output_keys(
    server: TestServer,
) -> None:
    result = await run(
        one(f'url: "{server.url}/echo?a=1", query: {{b: [2, 3], c: "x y"}}, headers: {{X-N: 7}}')
    )
    out = result.output
    assert set(out) == {
        "status_code", "headers", "body", "raw_body", "binary", "metadata", "success", "timing_ms"
    }  # fmt: skip
    assert out["status_code"] == 200
    assert out["success"] is True
    assert out["binary"] is False
    assert out["body"]["method"] == "GET"
    assert out["body"]["query"] == {"a": "1", "b": ["2", "3"], "c": "x y"}
    assert out["body"]["headers"]["x-n"] == "7"
    assert json.loads(out["raw_body"]) == out["body"]
    assert out["headers"]["content-type"] == "application/json"
    meta = out["metadata"]
    assert meta["content_type"] == "application/json"
    assert meta["content_length"] == len(out["raw_body"].encode())
    assert meta["request_url"] == f"{server.url}/echo?a=1&b=2&b=3&c=x+y"
    assert meta["request_method"] == "GET"
    assert meta["timing_ms"] == out["timing_ms"] >= 0
    assert result.action == "success"


async def test_the_output_is_in_shared_result_and_the_originals_http_result(
    server: TestServer,
) -> None:
    text = f"""\
metadata: {{name: t}}
nodes:
  fetch:
    type: http.request
    params: {{url: "{server.url}/echo", method: post, body: {{n: "${{input.n}}"}}}}
    next: {{success: show}}
  show:
    type: set
    params:
      values:
        method: ${{shared.http_result.body.method}}
        sent: ${{shared.result.body.body}}
        status: ${{shared.http_result.status_code}}
"""
    result = await run(text, {"n": 5})
    assert result.output == {"method": "POST", "sent": '{"n": 5}', "status": 200}
    assert result.shared["http_result"]["status_code"] == 200


async def test_a_string_body_is_sent_as_it_is(server: TestServer) -> None:
    out = (
        await run(
            one(
                f'url: "{server.url}/echo", method: PUT, body: "<x>1</x>", '
                "headers: {Content-Type: application/xml}"
            )
        )
    ).output
    assert out["body"]["body"] == "<x>1</x>"
    assert out["body"]["headers"]["content-type"] == "application/xml"


async def test_form_data_is_url_encoded(server: TestServer) -> None:
    out = (
        await run(one(f'url: "{server.url}/echo", method: POST, form_data: {{a: "x y&z=1", b: 2}}'))
    ).output
    assert out["body"]["body"] == "a=x+y%26z%3D1&b=2"
    assert out["body"]["headers"]["content-type"] == "application/x-www-form-urlencoded"


ABC_BASE64 = base64.b64encode(b"AB\x00C").decode()


async def test_multipart_files_from_text_and_base64_with_form_fields(server: TestServer) -> None:
    text = f"""\
metadata: {{name: t}}
nodes:
  up:
    type: http.request
    params:
      url: "{server.url}/echo"
      method: POST
      form_data: {{note: hello}}
      files:
        - {{field: doc, filename: a.txt, content: "${{input.text}}", content_type: text/plain}}
        - {{field: img, filename: p.bin, content_base64: "{ABC_BASE64}"}}
"""
    out = (await run(text, {"text": "line one"})).output
    sent = out["body"]["body"]
    assert out["body"]["headers"]["content-type"].startswith("multipart/form-data; boundary=")
    assert 'name="note"\r\n\r\nhello' in sent
    assert 'name="doc"; filename="a.txt"\r\nContent-Type: text/plain\r\n\r\nline one' in sent
    assert 'name="img"; filename="p.bin"' in sent
    assert "AB\x00C" in sent


@pytest.mark.parametrize(
    ("auth", "path"),
    [
        (f'auth: {{username: "{BASIC[0]}", password: "{BASIC[1]}"}}', "basic"),
        (f'username: "{BASIC[0]}", password: "{BASIC[1]}"', "basic"),
        (f"auth: {{token: {TOKEN}}}", "bearer"),
        (f"bearer_token: {TOKEN}", "bearer"),
    ],
)
async def test_auth_forms_of_the_original(server: TestServer, auth: str, path: str) -> None:
    result = await run(one(f'url: "{server.url}/{path}", {auth}'))
    assert (result.output["status_code"], result.action) == (200, "success")


async def test_api_key_goes_in_x_api_key_unless_key_name_says_otherwise(
    server: TestServer,
) -> None:
    out = (await run(one(f'url: "{server.url}/echo", api_key: k-1'))).output
    assert out["body"]["headers"]["x-api-key"] == "k-1"
    out = (
        await run(one(f'url: "{server.url}/echo", auth: {{api_key: k-2, key_name: X-Key}}'))
    ).output
    assert out["body"]["headers"]["x-key"] == "k-2"
    assert "x-api-key" not in out["body"]["headers"]


async def test_secrets_fill_credentials(server: TestServer) -> None:
    result = await run(
        one(f'url: "{server.url}/bearer", bearer_token: "${{secrets.TOKEN}}"'),
        secrets={"TOKEN": TOKEN},
    )
    assert result.action == "success"


async def test_wrong_credentials_route_to_client_error(server: TestServer) -> None:
    text = f"""\
metadata: {{name: t}}
nodes:
  call:
    type: http.request
    params: {{url: "{server.url}/basic", username: user, password: wrong}}
    next: {{success: ok, client_error: denied}}
  ok: {{type: set, params: {{values: {{went: ok}}}}}}
  denied: {{type: set, params: {{values: {{went: denied, status: "${{input.status_code}}"}}}}}}
"""
    assert (await run(text)).output == {"went": "denied", "status": 401}


@pytest.mark.parametrize(
    ("status", "action"), [(201, "success"), (404, "client_error"), (503, "server_error")]
)
async def test_status_classes_route_to_their_action(
    server: TestServer, status: int, action: str
) -> None:
    text = f"""\
metadata: {{name: t}}
nodes:
  call:
    type: http.request
    params: {{url: "{server.url}/status/{status}"}}
    next: {{success: a, client_error: b, server_error: c}}
  a: {{type: set, params: {{values: {{went: success}}}}}}
  b: {{type: set, params: {{values: {{went: client_error}}}}}}
  c: {{type: set, params: {{values: {{went: server_error}}}}}}
"""
    result = await run(text)
    assert result.output == {"went": action}
    assert result.results["call"]["success"] is (status < 300)


@pytest.mark.parametrize("status", [200, 404, 500])
async def test_with_only_a_default_edge_every_status_falls_through_to_it(
    server: TestServer, status: int
) -> None:
    text = f"""\
metadata: {{name: t}}
nodes:
  call:
    type: http.request
    params: {{url: "{server.url}/status/{status}"}}
    next: {{default: after}}
  after: {{type: set, params: {{values: {{status: "${{input.status_code}}"}}}}}}
"""
    result = await run(text)
    assert result.output == {"status": status}
    assert result.last_node_id == "after"


@pytest.mark.parametrize(
    ("path", "body", "binary"),
    [
        ("/problem", {"title": "bad"}, False),  # application/problem+json is JSON
        ("/text", "héllo\n", False),  # decoded with the declared charset
        ("/not-json", "{oops", False),  # says JSON, is not: the text
        ("/binary", None, True),
    ],
)
async def test_bodies_by_media_type(server: TestServer, path: str, body: Any, binary: bool) -> None:
    out = (await run(one(f'url: "{server.url}{path}"'))).output
    assert out["binary"] is binary
    if binary:
        from tests.http_server import PNG

        assert base64.b64decode(out["body"]) == PNG
        assert out["raw_body"] == out["body"]
    else:
        assert out["body"] == body


async def test_redirects_are_followed_up_to_ten(server: TestServer) -> None:
    out = (await run(one(f'url: "{server.url}/hops/10"'))).output
    assert out["status_code"] == 200
    assert out["metadata"]["request_url"] == f"{server.url}/echo"
    with pytest.raises(NodeFailed) as info:
        await run(one(f'url: "{server.url}/hops/11"'))
    assert isinstance(info.value.cause, HttpRequestFailed)
    assert str(info.value.cause).endswith("more than 10 redirects")


async def test_follow_redirects_false_returns_the_redirect(server: TestServer) -> None:
    result = await run(
        one(f'url: "{server.url}/hops/1", follow_redirects: false'),
    )
    assert result.action is None  # a 3xx is no status class of its own: the default edge
    assert result.results["fetch"]["status_code"] == 302
    assert result.results["fetch"]["headers"]["location"] == "/echo"


async def test_credentials_are_not_sent_to_another_origin_on_a_redirect(
    server: TestServer,
) -> None:
    to = f"http://localhost:{server.port}/echo"
    out = (
        await run(
            one(f'url: "{server.url}/redirect", query: {{to: "{to}"}}, api_key: k, bearer_token: t')
        )
    ).output
    assert out["metadata"]["request_url"] == to
    assert "x-api-key" not in out["body"]["headers"]
    assert "authorization" not in out["body"]["headers"]
    first = next(r for r in reversed(server.seen) if r["path"] == "/redirect")
    assert first["headers"]["x-api-key"] == "k"


# --- failures -------------------------------------------------------------------------------


async def test_a_timeout_fails_the_node_and_the_error_edge_gets_it(server: TestServer) -> None:
    text = f"""\
metadata: {{name: t}}
nodes:
  call:
    type: http.request
    params: {{url: "{server.url}/slow?seconds=30", timeout: 200ms}}
    retry: {{max_retries: 1}}
    next: {{error: handle}}
  handle: {{type: set, params: {{values: {{message: "${{error.message}}"}}}}}}
"""
    before = sum(r["path"] == "/slow" for r in server.seen)
    result = await run(text)
    assert result.output["message"] == (
        f"node 'call': GET {server.url}/slow?seconds=30: timed out after 0.2 s "
        "(waiting for the response)"
    )
    assert sum(r["path"] == "/slow" for r in server.seen) - before == 2  # retried once


async def test_a_refused_connection_fails_the_node_clearly() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed at once: nothing listens there
    with pytest.raises(NodeFailed) as info:
        await run(one(f'url: "http://127.0.0.1:{port}/x"'))
    cause = info.value.cause
    assert isinstance(cause, HttpRequestFailed)
    assert str(cause).startswith(f"node 'fetch': GET http://127.0.0.1:{port}/x: ConnectError")
    assert str(cause).endswith(f"cannot connect to 127.0.0.1:{port}: Connection refused")


async def test_an_unknown_host_fails_the_node_clearly() -> None:
    with pytest.raises(NodeFailed, match=re.escape("cannot resolve host 'no-such-host.invalid'")):
        await run(one('url: "http://no-such-host.invalid/"'))


@pytest.mark.parametrize(
    ("path", "how"), [("/big?bytes=300000", "streamed"), ("/echo", "declared")]
)
async def test_a_response_over_the_limit_fails_while_it_is_read(
    server: TestServer, monkeypatch: pytest.MonkeyPatch, path: str, how: str
) -> None:
    limit = 100_000 if how == "streamed" else 50
    monkeypatch.setenv("FLOWRUNNER_HTTP_MAX_RESPONSE_BYTES", str(limit))
    with pytest.raises(NodeFailed) as info:
        await run(one(f'url: "{server.url}{path}"'))
    assert isinstance(info.value.cause, HttpRequestFailed)
    assert str(info.value.cause).endswith(
        f"response body is larger than the limit of {limit} bytes "
        "(FLOWRUNNER_HTTP_MAX_RESPONSE_BYTES)"
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ('url: "${input.n}"', "param url: must be a non-empty string, got a int"),
        ('url: "http://x.test", method: "${input.m}"', "param method: must be one of GET"),
        ('url: "http://x.test", headers: "${input.list}"', "param headers: must be a mapping"),
        ('url: "http://x.test", timeout: "${input.m}"', "param timeout: invalid duration"),
        ('url: "http://x.test", body: {a: 1}, form_data: {b: 2}', "give either body or form_data"),
        (
            'url: "http://x.test", files: [{content: a, content_base64: YQ==}]',
            "param files[0]: give exactly one of content and content_base64",
        ),
        (
            'url: "http://x.test", files: [{content_base64: "%%%"}]',
            "param files[0].content_base64: is not base64",
        ),
        ('url: "http://x.test", password: "${input.m}"', "param username: is required"),
        ('url: "http://[::1/x"', "param url: "),
        ('url: "http://x.test", headers: {X-Name: "Zoë"}', "param headers: 'ascii' codec"),
    ],
)
async def test_params_that_resolve_to_something_unusable_name_the_param(
    params: str, message: str
) -> None:
    with pytest.raises(NodeFailed) as info:
        await run(one(params), {"n": 1, "m": "FETCH", "list": [1]})
    assert isinstance(info.value.cause, ParamError)
    assert message in str(info.value.cause)


@pytest.mark.parametrize(
    ("params", "where", "message"),
    [
        ('url: "http://x.test", method: FETCH', "5:44", "FETCH"),
        ("method: GET", "5:5", "missing required key 'url'"),
        ('url: "http://x.test", follow_redirects: "yes"', "5:54", "expected true or false"),
        ('url: "http://x.test", timeout: -1', "5:45", "-1"),
        ('url: "http://x.test", headers: [a]', "5:45", "expected a mapping"),
    ],
)
def test_a_wrong_param_is_a_definition_error_with_its_line_and_column(
    params: str, where: str, message: str
) -> None:
    with pytest.raises(DefinitionError) as info:
        load_flow(one(params))
    problems = [p for p in info.value.problems if p.severity == "error"]
    assert problems, info.value.problems
    assert any(message in p.message and p.location == where for p in problems), problems


def test_a_misspelt_param_is_warned_about_with_its_line_and_a_suggestion() -> None:
    definition = load_flow(one('url: "http://x.test", methd: POST, bearer_tokn: t'))
    found = {(p.location, p.message, p.hint) for p in definition.warnings}
    assert any(
        loc == "5:36" and "methd" in msg and "method" in str(hint) for loc, msg, hint in found
    ), found
    assert any("bearer_tokn" in msg and "bearer_token" in str(hint) for _, msg, hint in found), (
        found
    )


async def test_the_default_policy_refuses_loopback_naming_host_and_reason(
    server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLOWRUNNER_HTTP_ALLOW_PRIVATE")
    before = len(server.seen)
    for url in (f"{server.url}/echo", f"http://localhost:{server.port}/echo"):
        with pytest.raises(NodeFailed) as info:
            await run(one(f'url: "{url}"'))
        cause = info.value.cause
        assert isinstance(cause, DestinationRefused)
        assert "refused to connect to '" in str(cause)
        assert "a loopback address" in str(cause)
        assert str(cause).startswith("node 'fetch': ")
    assert len(server.seen) == before  # nothing reached the server


async def test_a_redirect_from_an_allowed_server_to_a_refused_address_is_refused(
    server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLOWRUNNER_HTTP_ALLOW_PRIVATE")
    monkeypatch.setenv("FLOWRUNNER_HTTP_ALLOW", "127.0.0.1/32")
    for target, why in [
        (f"http://127.0.0.2:{server.port}/echo", "'127.0.0.2': a loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "a cloud metadata address"),
        (f"http://[::ffff:10.0.0.1]:{server.port}/", "a private address (10.0.0.1) in IPv6 form"),
        ("file:///etc/passwd", "scheme 'file' is not http or https"),
    ]:
        before = len(server.seen)
        with pytest.raises(NodeFailed) as info:
            await run(one(f'url: "{server.url}/redirect", query: {{to: "{target}"}}'))
        assert isinstance(info.value.cause, DestinationRefused), info.value.cause
        assert why in str(info.value.cause)
        assert [r["path"] for r in server.seen[before:]] == ["/redirect"]


async def test_cancelling_the_run_aborts_the_request(server: TestServer) -> None:
    server.holding.clear()
    server.disconnected.clear()
    task = asyncio.create_task(run(one(f'url: "{server.url}/hold"')))
    assert await asyncio.to_thread(server.holding.wait, HANG_GUARD)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(server.disconnected.wait, HANG_GUARD)


async def test_a_node_timeout_aborts_the_request_too(server: TestServer) -> None:
    server.disconnected.clear()
    text = one(f'url: "{server.url}/hold"').replace(
        "    params:", "    timeout: 300ms\n    params:"
    )
    with pytest.raises(NodeFailed, match=r"timed out|timeout"):
        await run(text)
    assert await asyncio.to_thread(server.disconnected.wait, HANG_GUARD)


async def test_one_account_cannot_take_every_connection_of_the_shared_client(
    server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWRUNNER_HTTP_MAX_CONNECTIONS", "4")  # so 2 per account
    hog_flow = f"""\
metadata: {{name: hog}}
nodes:
  calls:
    type: http.request
    batch: {{items: [1, 2, 3, 4, 5, 6], strategy: parallel}}
    params: {{url: "{server.url}/hold?i=${{item}}"}}
"""

    async def as_account(account: str, text: str) -> RunResult:
        ACCOUNT_ID.set(account)  # what the runner sets for a run (the task's own context)
        return await run(text)

    def held() -> int:
        return sum(1 for r in server.seen if r["path"] == "/hold") - before

    before = sum(1 for r in server.seen if r["path"] == "/hold")
    hog = asyncio.create_task(as_account("hog", hog_flow))
    async with asyncio.timeout(HANG_GUARD):
        while held() < 2:  # noqa: ASYNC110 - the state lives in the server thread
            await asyncio.sleep(0.01)
    other = await as_account("other", one(f'url: "{server.url}/echo"'))
    assert other.action == "success"  # served while four of the hog's requests wait
    assert held() == 2  # the hog stayed at its share
    hog.cancel()
    with pytest.raises(asyncio.CancelledError):
        await hog


def test_a_bad_allow_list_entry_stops_the_flow_from_compiling_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLOWRUNNER_HTTP_ALLOW", "10.0.0.0/8, http://intranet")
    with pytest.raises(DefinitionError) as info:
        compile_flow(load_flow(one('url: "http://x.test"')))
    assert "FLOWRUNNER_HTTP_ALLOW: 'http://intranet' is not a CIDR or host" in str(info.value)
