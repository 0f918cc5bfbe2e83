"""Bad input at the API's edge is a 400 naming the problem, never a 500 — against a real
``flowrunner serve`` on SQLite and on PostgreSQL: deep JSON, NUL and lone surrogates in
bodies, queries and credentials, and a hypothesis run mixing those shapes into every kind of
request."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.helpers import YAML_TYPE, flow_yaml
from tests.conftest import require_service
from tests.e2e.server import Server
from tests.storage.conftest import scratch_postgres_database

pytestmark = pytest.mark.slow
API = "/api/v1"
DEPTH_LIMIT = 64  # the default FLOWRUNNER_MAX_JSON_DEPTH
# Generous, for a busy machine: a script building a 900-level value must not hit the default
# one-second limit because the CPU was elsewhere.
HANG_GUARDS: dict[str, Any] = {"script_timeout": 60}


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp(f"guard-{request.param}")
    if request.param == "postgres":
        url = require_service("FLOWRUNNER_TEST_POSTGRES_URL", "PostgreSQL")
        databases = scratch_postgres_database(url, migrate=False)
        running = Server(data_dir, storage="postgres", database_url=next(databases), **HANG_GUARDS)
    else:
        databases, running = iter(()), Server(data_dir, **HANG_GUARDS)
    running.start(timeout=120)
    try:
        yield running
    finally:
        running.stop()
        for _ in databases:  # drops the scratch database
            pass


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {server.token()}"}, timeout=30
    ) as http:
        yield http


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


def deep_text(depth: int) -> str:
    return "[" * depth + "]" * depth


def assert_refused(response: httpx.Response, *words: str) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    for word in words:
        assert word in error["message"]


def test_json_nested_100k_deep_is_a_400_for_flows(client: httpx.Client) -> None:
    body = '{"content": ' + deep_text(100_000) + "}"
    response = client.post(
        f"{API}/flows", content=body, headers={"content-type": "application/json"}
    )
    assert_refused(response, f"deeper than {DEPTH_LIMIT} levels")


def test_deep_run_input_is_refused_and_the_run_list_still_reads(client: httpx.Client) -> None:
    flow = client.post(f"{API}/flows", content=flow_yaml(), headers=YAML_TYPE).json()
    run = f"{API}/flows/{flow['id']}/run"
    deep = client.post(run, json={"input": {"x": nested(900)}})
    assert_refused(deep, "deeper than")
    # The body is one level, input another: x holds the remaining 62.
    over = client.post(run, json={"input": {"x": nested(DEPTH_LIMIT - 1)}})
    assert_refused(over, f"deeper than {DEPTH_LIMIT} levels")
    at_limit = client.post(run, json={"input": {"x": nested(DEPTH_LIMIT - 2)}})
    assert at_limit.status_code == 202, at_limit.text
    listed = client.get(f"{API}/executions")
    assert listed.status_code == 200
    assert at_limit.json()["execution_id"] in [e["id"] for e in listed.json()["items"]]


def test_lone_surrogate_secret_value_is_refused_and_nothing_is_stored(client: httpx.Client) -> None:
    secrets = f"{API}/accounts/me/secrets"
    body = '{"key": "SURROGATE", "value": "abc\\ud800def"}'
    response = client.post(secrets, content=body, headers={"content-type": "application/json"})
    assert_refused(response, "body.value", "lone surrogate (U+D800)")
    assert client.get(f"{secrets}/SURROGATE").status_code == 404
    assert client.get(secrets).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body", "where"),
    [
        ("post", "/flows", {"content": flow_yaml(), "name": "a\x00b"}, "body.name"),
        ("post", "/tokens", {"name": "tok\x00en"}, "body.name"),
        ("post", "/login", {"username": "ad\x00min", "password": "x"}, "body.username"),
        ("post", "/accounts/me/secrets", {"key": "K\x00", "value": "v"}, "body.key"),
        ("post", "/accounts/me/secrets", {"key": "K", "value": {"a\x00": 1}}, "body.value.a"),
    ],
)
def test_nul_in_a_json_body_is_a_400_naming_the_field(
    client: httpx.Client, method: str, path: str, body: dict[str, Any], where: str
) -> None:
    response = client.request(method, f"{API}{path}", json=body)
    assert_refused(response, where, "NUL")


def test_nul_in_a_yaml_flow_is_a_400_at_its_line(client: httpx.Client) -> None:
    # YAML's "\0" escape is the one way a NUL gets into a flow sent as text.
    yaml = flow_yaml(name='"Nul\\0Name"', description='"and\\0here"')
    response = client.post(f"{API}/flows", content=yaml, headers=YAML_TYPE)
    assert response.status_code == 400, response.text
    problems = response.json()["error"]["details"]
    assert [(p["path"], p["line"]) for p in problems] == [
        ("metadata.name", 2),
        ("metadata.description", 3),
    ]
    assert all("NUL" in p["message"] for p in problems)


@pytest.mark.parametrize(
    "url",
    [
        f"{API}/flows?name=a%00b",
        f"{API}/executions?flow_id=%00",
        f"{API}/accounts/me/secrets?prefix=%00",
        f"{API}/flows/ab%00cd",
    ],
)
def test_nul_in_a_query_or_path_is_a_400(client: httpx.Client, url: str) -> None:
    assert_refused(client.get(url), "NUL")


def test_nul_in_basic_credentials_is_a_400(server: Server) -> None:
    basic = base64.b64encode(b"ad\x00min:password").decode()
    response = httpx.get(
        f"{server.url}{API}/accounts/me", headers={"Authorization": f"Basic {basic}"}, timeout=30
    )
    assert_refused(response, "NUL")


# Hypothesis: the shapes above, mixed into the requests a client can make.

_NASTY_TEXT = st.sampled_from(["\x00", "\ud800", "\udfff", "a\x00b", "x\udc00y", "ok"])
_TEXT = st.one_of(
    st.text(max_size=12),
    _NASTY_TEXT,
    st.builds(lambda a, b: a + b, st.text(max_size=5), _NASTY_TEXT),
)
_LEAF = st.one_of(st.none(), st.booleans(), st.integers(-10, 10), _TEXT)
_JSON = st.recursive(
    _LEAF,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_TEXT, inner, max_size=3)),
    max_leaves=12,
)
_DEEP = st.builds(nested, st.sampled_from([DEPTH_LIMIT - 2, DEPTH_LIMIT, DEPTH_LIMIT + 1, 900]))
_VALUE = st.one_of(_JSON, _DEEP)

# (method, path, a body the route accepts): the fuzzer replaces or adds one field at a time,
# so most requests get past the model to where a bad value used to do harm.
_OPERATIONS: list[tuple[str, str, dict[str, Any]]] = [
    ("post", "/login", {"username": "admin", "password": "wrong"}),
    ("post", "/tokens", {"name": "t"}),
    ("post", "/flows", {"content": flow_yaml(name="F"), "name": "n", "tags": ["a"]}),
    ("post", "/flows/validate", {"content": flow_yaml()}),
    ("post", "/accounts/me/secrets", {"key": "K", "value": "v", "metadata": {"m": 1}}),
    ("put", "/accounts/me/secrets/K", {"value": {"user": "u"}}),
    ("post", "/flows/{flow}/run", {"input": {"a": 1}}),
    ("patch", "/flows/{flow}", {"name": "n", "description": "d", "tags": ["t"]}),
]
# What must still read after a write was accepted: a stored value that breaks a later read is
# the same bug as a 500 on the write.
_READ_BACK = {
    "/tokens": "/tokens",
    "/flows": "/flows",
    "/accounts/me/secrets": "/accounts/me/secrets/K",
    "/accounts/me/secrets/K": "/accounts/me/secrets/K",
    "/flows/{flow}/run": "/executions",
    "/flows/{flow}": "/flows/{flow}",
}
_QUERIES = [
    ("/flows", ["name", "description", "tag", "cursor"]),
    ("/executions", ["flow_id", "status", "cursor"]),
    ("/accounts/me/secrets", ["prefix", "cursor"]),
    ("/tokens", ["cursor"]),
    ("/audit", ["scope", "cursor"]),
]


@st.composite
def bodies(draw: st.DrawFn) -> tuple[str, str, bytes]:
    method, path, template = draw(st.sampled_from(_OPERATIONS))
    body: Any = dict(template)
    field = draw(st.sampled_from([*template, "extra"]))
    body[field] = draw(st.one_of(_VALUE, st.builds(lambda v: {"x": v}, _VALUE)))
    if draw(st.integers(0, 9)) == 0:
        body = draw(_VALUE)  # not an object at all, or deep from the top
    # json.dumps writes a lone surrogate as its \u escape; sometimes send raw UTF-8 bytes.
    text = json.dumps(body, ensure_ascii=draw(st.booleans()))
    return method, path, text.encode("utf-8", "surrogatepass")


@st.composite
def queries(draw: st.DrawFn) -> tuple[str, dict[str, str]]:
    path, names = draw(st.sampled_from(_QUERIES))
    chosen = draw(st.lists(st.sampled_from(names), min_size=1, max_size=2, unique=True))
    # httpx percent-encodes; a surrogate cannot be encoded as UTF-8, so those go as "?".
    params = {name: draw(_TEXT).encode("utf-8", "replace").decode("utf-8") for name in chosen}
    return path, params


_FUZZ = settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)


@pytest.fixture(scope="module")
def flow_id(client: httpx.Client) -> str:
    created = client.post(f"{API}/flows", content=flow_yaml(name="Fuzzed"), headers=YAML_TYPE)
    flow: str = created.json()["id"]
    return flow


def test_fuzzed_bodies_never_get_a_server_error(client: httpx.Client, flow_id: str) -> None:
    @_FUZZ
    @given(request=bodies())
    def run(request: tuple[str, str, bytes]) -> None:
        method, path, body = request
        response = client.request(
            method,
            API + path.format(flow=flow_id),
            content=body,
            headers={"content-type": "application/json"},
        )
        assert response.status_code < 500, (path, body[:300], response.text)
        if response.is_success and path in _READ_BACK:
            read = client.get(API + _READ_BACK[path].format(flow=flow_id))
            assert read.status_code == 200, (path, body[:300], read.text)

    run()


def test_fuzzed_queries_never_get_a_server_error(client: httpx.Client) -> None:
    @_FUZZ
    @given(request=queries())
    def run(request: tuple[str, dict[str, str]]) -> None:
        path, params = request
        response = client.get(API + path, params=params)
        assert response.status_code < 500, (path, params, response.text)

    run()


# The WebSocket: a frame it cannot read is answered, and the connection stays usable.


async def test_websocket_answers_a_non_json_frame_and_keeps_the_connection(
    server: Server,
) -> None:
    headers = {"Authorization": f"Bearer {server.token()}"}
    async with websockets.connect(server.ws_url, additional_headers=headers) as ws:
        for frame in [
            "not json {",
            deep_text(100_000),
            '{"type": "subscribe", "flow_id": "a\\u0000"}',
        ]:
            await ws.send(frame)
            answer = json.loads(await asyncio.wait_for(ws.recv(), 30))
            assert answer["type"] == "error"
            assert answer["error"]["code"] == "bad_request"
        await ws.send(b"\x00\x01")  # a binary frame
        assert "binary" in json.loads(await asyncio.wait_for(ws.recv(), 30))["error"]["message"]
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 30)) == {"type": "pong"}


async def test_websocket_auth_message_that_is_not_json_is_refused_with_a_close_code(
    server: Server,
) -> None:
    async with websockets.connect(server.ws_url) as ws:
        await ws.send("token please")
        answer = json.loads(await asyncio.wait_for(ws.recv(), 30))
        assert answer["error"]["code"] == "unauthenticated"
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 30)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4401


# Body shapes the docs promise: an unknown run field is a 422, a flow as text/plain a 415.


def test_run_body_with_an_unknown_field_is_a_422_naming_it(
    client: httpx.Client, flow_id: str
) -> None:
    response = client.post(f"{API}/flows/{flow_id}/run", json={"inputs": {"a": 1}})
    assert response.status_code == 422, response.text
    details = response.json()["error"]["details"]
    assert [d["loc"] for d in details] == [["body", "inputs"]]
    assert details[0]["type"] == "extra_forbidden"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_flow_sent_as_text_or_form_is_a_415_that_says_what_to_send(
    client: httpx.Client, content_type: str
) -> None:
    response = client.post(
        f"{API}/flows", content=flow_yaml(name="Plain"), headers={"content-type": content_type}
    )
    assert response.status_code == 415, response.text
    assert "application/yaml" in response.json()["error"]["message"]
    assert "Plain" not in [f["name"] for f in client.get(f"{API}/flows").json()["items"]]


# What a run produces is not checked at the door: a script may return anything. It is made
# storable and servable on the way out, so the run completes and its account's list reads.


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        (
            "return {a: 'x\\u0000y', b: 'p\\ud800q', ['k\\u0000']: 1};",
            {"a": "x\x00y", "b": "p\ufffdq", "k\x00": 1},
        ),
        ("let v = 1; for (let i = 0; i < 900; i++) v = [v]; return {v};", None),
    ],
)
def test_a_run_output_with_nul_surrogates_or_deep_nesting_completes_and_lists(
    client: httpx.Client, script: str, expected: Any
) -> None:
    # A secret in the account: outputs are then masked, which walks them too.
    secret = client.put(f"{API}/accounts/me/secrets/MASKED", json={"value": "hunter22"})
    assert secret.status_code == 200, secret.text
    yaml = (
        "metadata:\n  name: Output\nnodes:\n  t:\n    type: transform\n    params:\n"
        f"      script: |\n        {script}\n"
    )
    created = client.post(f"{API}/flows", content=yaml, headers=YAML_TYPE)
    assert created.status_code == 201, created.text
    run = client.post(f"{API}/flows/{created.json()['id']}/run", params={"wait": "60s"}, json={})
    assert run.status_code == 200, run.text
    assert run.json()["status"] == "completed", run.json()["error"]
    output = run.json()["output"]
    if expected is None:
        assert output["$truncated"] is True
        assert output["reason"] == "nested deeper than 200 levels"
    else:
        assert output == expected
    listed = client.get(f"{API}/executions")
    assert listed.status_code == 200
    assert run.json()["id"] in [e["id"] for e in listed.json()["items"]]
    logs = client.get(f"{API}/executions/{run.json()['id']}/logs")
    assert logs.status_code == 200
