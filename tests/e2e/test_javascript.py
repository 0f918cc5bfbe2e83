"""JavaScript through a real ``flowrunner serve``, started as the README starts it.

The server runs under uvicorn with its default event loop (uvloop when installed) and
default settings: every script below runs in the sandbox workers of that server. A sandbox
that could not drive its workers on uvloop once failed every one of these runs.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.server import Server

pytestmark = pytest.mark.slow

SECRET_VALUE = "tok-5f1c2e9a-very-secret"


@pytest.fixture(scope="module")
def js_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with Server(tmp_path_factory.mktemp("javascript")) as running:  # default settings
        yield running


@pytest.fixture
async def client(js_server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with js_server.client() as http:
        yield http


async def run_flow(
    client: httpx.AsyncClient, yaml: str, run_input: dict[str, Any]
) -> dict[str, Any]:
    """Store ``yaml``, run it with ``run_input`` and wait for the finished run."""
    created = await client.post(
        "/api/v1/flows", content=yaml, headers={"content-type": "application/yaml"}
    )
    assert created.status_code == 201, created.text
    answer = await client.post(
        f"/api/v1/flows/{created.json()['id']}/run?wait=20s", json={"input": run_input}
    )
    assert answer.status_code == 200, answer.text
    run: dict[str, Any] = answer.json()
    return run


async def events_of(client: httpx.AsyncClient, execution_id: str) -> list[dict[str, Any]]:
    """The finished run's whole event history, as the SSE stream replays it."""
    events: list[dict[str, Any]] = []
    async with client.stream("GET", f"/api/v1/executions/{execution_id}/events") as stream:
        assert stream.status_code == 200
        async for line in stream.aiter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[len("data: ") :]))
                if events[-1]["type"] in ("complete", "error"):
                    break
    return events


def node_outputs(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        e["data"]["node_id"]: e["data"].get("output")
        for e in events
        if e["type"] == "node" and e["data"]["state"] == "finished"
    }


TRANSFORM = """metadata: {name: JS transform}
nodes:
  total:
    type: transform
    params:
      rate: 2
      script: |
        shared.orders = input.orders.length;
        const big = input.orders.filter((o) => o.total * params.rate > 10);
        return {ids: big.map((o) => o.id), sum: big.reduce((a, o) => a + o.total, 0)};
    next: {default: keep}
  keep: {type: set, params: {values: {seen: "${shared.orders}", ids: "${input.ids}"}}}
"""


async def test_transform_returns_its_value_and_writes_shared(client: httpx.AsyncClient) -> None:
    orders = [{"id": "a", "total": 3}, {"id": "b", "total": 8}, {"id": "c", "total": 6}]
    run = await run_flow(client, TRANSFORM, {"orders": orders})
    assert run["status"] == "completed", run
    assert run["output"] == {"seen": 3, "ids": ["b", "c"]}
    assert node_outputs(await events_of(client, run["id"]))["total"] == {
        "ids": ["b", "c"],
        "sum": 14,
    }


CONDITION = """metadata: {name: JS condition}
nodes:
  check:
    type: condition
    params:
      condition_script: |
        return input.n > 0 ? "positive" : input.n === 0;
    next: {positive: up, "true": zero, "false": down}
  up: {type: set, params: {values: {went: up}}}
  zero: {type: set, params: {values: {went: zero}}}
  down: {type: set, params: {values: {went: down}}}
"""


@pytest.mark.parametrize(("n", "branch"), [(5, "up"), (0, "zero"), (-3, "down")])
async def test_condition_routes_by_what_the_script_returns(
    client: httpx.AsyncClient, n: int, branch: str
) -> None:
    run = await run_flow(client, CONDITION, {"n": n})
    assert run["status"] == "completed", run
    assert run["output"] == {"went": branch}


HOOKS = """metadata: {name: JS hooks}
nodes:
  work:
    type: set
    params: {values: {from_params: "${input.word}"}}
    hooks:
      prep: |
        shared.trail = ["prep"];
        return {values: {from_prep: params.values.from_params.toUpperCase()}};
      exec: |
        shared.trail.push("exec");
        return {made: params.values.from_prep + "!", index: shared.trail.length};
      post: |
        shared.trail.push("post");
        return output.made.length > 3 ? "long" : "short";
    next: {long: long, short: short}
  long: {type: set, params: {values: {branch: long, trail: "${shared.trail}", got: "${input}"}}}
  short: {type: set, params: {values: {branch: short}}}
"""


async def test_prep_exec_and_post_hooks_run_in_order_and_steer_the_run(
    client: httpx.AsyncClient,
) -> None:
    run = await run_flow(client, HOOKS, {"word": "hello"})
    assert run["status"] == "completed", run
    assert run["output"] == {
        "branch": "long",
        "trail": ["prep", "exec", "post"],
        "got": {"made": "HELLO!", "index": 2},
    }


EXPRESSIONS = """metadata: {name: JS expressions}
nodes:
  compute:
    type: set
    params:
      values:
        total: "${input.items.map((i) => i.price * i.qty).reduce((a, b) => a + b, 0)}"
        label: "${input.items.length} items, first ${input.items[0].name.toUpperCase()}"
        cheap: "${input.items.filter((i) => i.price < 2).map((i) => i.name)}"
"""


async def test_non_path_expressions_are_evaluated_in_the_sandbox(
    client: httpx.AsyncClient,
) -> None:
    items = [{"name": "pen", "price": 1.5, "qty": 4}, {"name": "ink", "price": 7, "qty": 1}]
    run = await run_flow(client, EXPRESSIONS, {"items": items})
    assert run["status"] == "completed", run
    assert run["output"] == {"total": 13, "label": "2 items, first PEN", "cheap": ["pen"]}


CONSOLE = """metadata: {name: JS console}
nodes:
  talk:
    type: transform
    params:
      script: |
        console.log("processing", input.n, {deep: [1, 2]});
        console.warn("careful");
        console.error("bad thing", 42);
        return input.n + 1;
"""


async def test_console_output_becomes_run_log_events(client: httpx.AsyncClient) -> None:
    run = await run_flow(client, CONSOLE, {"n": 41})
    assert run["status"] == "completed", run
    assert run["output"] == 42
    logs = await client.get(f"/api/v1/executions/{run['id']}/logs")
    assert logs.status_code == 200, logs.text
    lines = [
        (item["data"]["node_id"], item["data"]["level"], item["data"]["message"])
        for item in logs.json()["items"]
    ]
    assert lines == [
        ("talk", "info", 'processing 41 {"deep":[1,2]}'),
        ("talk", "warning", "careful"),
        ("talk", "error", "bad thing 42"),
    ]
    # The same lines are events of the run, in order, before the node finishes.
    events = await events_of(client, run["id"])
    kinds = [(e["type"], e["data"].get("message") or e["data"].get("state")) for e in events]
    finished = kinds.index(("node", "finished"))
    assert [k for k in kinds[:finished] if k[0] == "log"] == [
        ("log", 'processing 41 {"deep":[1,2]}'),
        ("log", "careful"),
        ("log", "bad thing 42"),
    ]


SECRET = """metadata: {name: JS secret}
nodes:
  use:
    type: transform
    params:
      script: |
        console.log("using", secrets.JS_TOKEN);
        return {header: "Bearer " + secrets.JS_TOKEN, length: secrets.JS_TOKEN.length};
    next: {default: echo}
  echo:
    type: set
    params: {values: {again: "${secrets.JS_TOKEN.slice(0)}", header: "${input.header}"}}
"""


async def test_a_secret_used_from_javascript_is_masked_everywhere(
    client: httpx.AsyncClient, js_server: Server
) -> None:
    put = await client.put("/api/v1/accounts/me/secrets/JS_TOKEN", json={"value": SECRET_VALUE})
    assert put.status_code in (200, 201), put.text
    run = await run_flow(client, SECRET, {})
    assert run["status"] == "completed", run
    # The script saw the real value (its length), everything that left the run is masked.
    assert run["output"] == {"again": "***", "header": "Bearer ***"}
    events = await events_of(client, run["id"])
    assert node_outputs(events)["use"] == {"header": "Bearer ***", "length": len(SECRET_VALUE)}
    logs = (await client.get(f"/api/v1/executions/{run['id']}/logs")).json()["items"]
    assert [item["data"]["message"] for item in logs] == ["using ***"]
    seen = json.dumps(run) + json.dumps(events) + json.dumps(logs)
    assert SECRET_VALUE not in seen
    assert SECRET_VALUE not in js_server.log.read_text()  # nor in the server's own log


async def test_a_secret_derived_output_is_not_stored_in_plaintext(
    client: httpx.AsyncClient, js_server: Server
) -> None:
    put = await client.put("/api/v1/accounts/me/secrets/JS_TOKEN", json={"value": SECRET_VALUE})
    assert put.status_code in (200, 201), put.text
    run = await run_flow(client, SECRET, {})
    assert run["status"] == "completed", run
    for path in Path(js_server.data_dir).glob("flowrunner.db*"):  # the database and its WAL
        assert SECRET_VALUE.encode() not in path.read_bytes(), path


NATIVE = """metadata: {name: Native expressions}
nodes:
  add:
    type: set
    params: {values: {n: "${input.n + 1}", half: "${input.n / 2}", o: "${input.o}"}}
    next: {default: check}
  check:
    type: condition
    params: {condition_script: "return input.n > 2 ? 'big' : input.half >= 0.5;"}
    next: {big: big, "true": small}
  big: {type: set, params: {values: {went: "big ${input.n * 10}", obj: "${input.o + '!'}"}}}
  small: {type: set, params: {values: {went: "small ${input.n === 2}"}}}
"""


@pytest.mark.parametrize(
    ("run_input", "output"),
    [
        ({"n": 1}, {"went": "small true"}),
        ({"n": 4}, {"went": "big 50", "obj": "null!"}),  # a missing key's path is null
    ],
)
async def test_native_expressions_and_conditions_answer_as_javascript_does(
    client: httpx.AsyncClient, run_input: dict[str, Any], output: dict[str, Any]
) -> None:
    # Evaluated in the server process (no sandbox round trip) with V8's exact results.
    run = await run_flow(client, NATIVE, run_input)
    assert run["status"] == "completed", run
    assert run["output"] == output


async def test_a_native_expression_with_an_object_operand_is_evaluated_by_v8(
    client: httpx.AsyncClient,
) -> None:
    # `input.o + '!'` with an object is ToPrimitive: the sandbox workers answer.
    run = await run_flow(client, NATIVE, {"n": 4, "o": {"a": 1}})
    assert run["status"] == "completed", run
    assert run["output"] == {"went": "big 50", "obj": "[object Object]!"}


PREP_JOINED = """metadata: {name: JS prep hooks joined}
nodes:
  first:
    type: set
    params: {values: {n: "${(0, input.n) + 1}", tags: "${input.tags.map((t) => t.toUpperCase())}"}}
    hooks:
      prep: |
        console.log("first sees", params.values.n, params.values.tags.join("+"));
        shared.trail = [params.values.n];
        return {values: {n: params.values.n * 10, tags: params.values.tags}};
    next: {default: second}
  second:
    type: set
    params: {values: {n: "${(0, input.n) + 1}", label: static}}
    hooks:
      prep: |
        shared.trail.push(params.values.n);
    next: {default: third}
  third:
    type: set
    params: {values: {total: "${shared.trail.reduce((a, b) => a + b, 0)}"}}
    hooks:
      prep: |
        if (params.values.total > 100) throw new Error("too big: " + params.values.total);
        console.warn("total", params.values.total);
"""


async def sandbox_round_trips(client: httpx.AsyncClient) -> float:
    """The server's count of requests its sandbox workers answered so far (``/metrics``)."""
    answer = await client.get("/metrics")
    assert answer.status_code == 200, answer.text
    total = 0.0
    for line in answer.text.splitlines():
        if line.startswith("flowrunner_sandbox_evaluation_seconds_count"):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_a_prep_hook_and_its_nodes_expressions_take_one_sandbox_round_trip(
    client: httpx.AsyncClient,
) -> None:
    before = await sandbox_round_trips(client)
    run = await run_flow(client, PREP_JOINED, {"n": 1, "tags": ["a", "b"]})
    assert run["status"] == "completed", run
    assert await sandbox_round_trips(client) - before == 3  # one per node, not two
    # first: n = 2, the hook makes it 20; second: n = 21; the trail is [2, 21].
    assert run["output"] == {"total": 23}
    events = await events_of(client, run["id"])
    assert node_outputs(events) == {
        "first": {"n": 20, "tags": ["A", "B"]},
        "second": {"n": 21, "label": "static"},
        "third": {"total": 23},
    }
    logs = (await client.get(f"/api/v1/executions/{run['id']}/logs")).json()["items"]
    assert [(i["data"]["node_id"], i["data"]["level"], i["data"]["message"]) for i in logs] == [
        ("first", "info", "first sees 2 A+B"),
        ("third", "warning", "total 23"),
    ]
    # A hook that throws fails its node with its own error, after the same one round trip.
    before = await sandbox_round_trips(client)
    run = await run_flow(client, PREP_JOINED, {"n": 60, "tags": []})
    assert run["status"] == "failed", run
    assert await sandbox_round_trips(client) - before == 3
    assert "too big: 672" in json.dumps(run["error"]), run  # the trail is [61, 611]
