"""An account's JavaScript node types over HTTP: define (YAML or JSON), version, list, delete;
flows of that account use them (checked and run in the sandbox); other accounts see nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.api.helpers import YAML_TYPE, Api, Headers, error_of
from tests.conftest import HANG_GUARD

CUSTOM = "/api/v1/node-types/custom"
FLOWS = "/api/v1/flows"
WAIT = f"?wait={HANG_GUARD:.0f}s"

GREET = """name: acme.greet
description: Greets params.name.
params:
  type: object
  properties:
    name: {type: string}
    shout: {type: boolean}
  required: [name]
script: |
  const text = `Hello, ${params.name} from ${input.city}`;
  shared.greeted = (shared.greeted || 0) + 1;
  console.log("greeting " + params.name);
  return params.shout ? text.toUpperCase() : text;
"""

SIZE = {
    "name": "acme.size",
    "description": "Routes long texts to 'long'.",
    "params": {"type": "object", "properties": {"limit": {"type": "integer"}}},
    "script": "const n = String(input.text).length;\n"
    "return n > params.limit ? {action: 'long', output: input} : n;",
    "actions": ["long"],
}

USES = """metadata: {name: Uses custom}
nodes:
  size: {type: acme.size, params: {limit: 5}, next: {long: greet}}
  greet: {type: acme.greet, params: {name: "${input.who}", shout: true}}
"""


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "node-types" / "greet.yaml"
DOC_FLOW = """metadata: {name: Greeting}
nodes:
  greet:
    type: acme.greet
    params: {name: "${input.who}", shout: true}
    next: {loud: log}
  log: {type: log, params: {message: "${input}"}}
"""


async def _define(api: Api, who: Headers, body: str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(body, str):
        answer = await api.client.post(CUSTOM, content=body, headers={**who, **YAML_TYPE})
    else:
        answer = await api.client.post(CUSTOM, json=body, headers=who)
    assert answer.status_code == 201, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def test_a_flow_uses_the_accounts_types_and_runs_them_in_the_sandbox(
    api: Api, alice: Headers
) -> None:
    greet = await _define(api, alice, GREET)
    assert (greet["name"], greet["version"], greet["actions"]) == ("acme.greet", 1, [])
    await _define(api, alice, SIZE)
    flow = await api.create_flow(alice, USES)
    run = await api.client.post(
        f"{FLOWS}/{flow['id']}/run{WAIT}",
        json={"input": {"text": "a long text", "who": "Ada", "city": "Lyon"}},
        headers=alice,
    )
    assert run.status_code == 200, run.text
    done = run.json()
    assert done["status"] == "completed", done
    assert done["output"] == "HELLO, ADA FROM LYON"  # greet's input is size's output
    logs = await api.client.get(f"/api/v1/executions/{done['id']}/logs", headers=alice)
    assert "greeting Ada" in logs.text

    short = await api.client.post(
        f"{FLOWS}/{flow['id']}/run{WAIT}", json={"input": {"text": "ab"}}, headers=alice
    )
    assert short.json()["output"] == 2  # no action picked: default, which ends the flow

    catalog = (await api.client.get("/api/v1/node-types", headers=alice)).json()["items"]
    mine = {t["name"]: t for t in catalog if t["source"] == "account"}
    assert set(mine) == {"acme.greet", "acme.size"}
    assert mine["acme.size"]["actions"] == ["long"]
    assert mine["acme.greet"]["version"] == "1"
    assert mine["acme.greet"]["params_schema"]["required"] == ["name"]


async def test_params_are_checked_against_the_types_schema_when_a_flow_is_saved(
    api: Api, alice: Headers
) -> None:
    await _define(api, alice, GREET)
    bad = "metadata: {name: Bad}\nnodes:\n  g: {type: acme.greet, params: {name: 3}}\n"
    answer = await api.client.post(FLOWS, content=bad, headers={**alice, **YAML_TYPE})
    assert answer.status_code == 400
    (problem,) = [p for p in error_of(answer)["details"] if p["severity"] == "error"]
    assert problem["path"] == "nodes.g.params.name"
    assert (problem["line"], problem["column"]) == (3, 40)
    validated = await api.client.post(
        f"{FLOWS}/validate", content=bad, headers={**alice, **YAML_TYPE}
    )
    assert validated.json()["valid"] is False


async def test_another_account_neither_sees_nor_uses_them(
    api: Api, alice: Headers, bob: Headers
) -> None:
    await _define(api, alice, GREET)
    assert (await api.client.get(f"{CUSTOM}/acme.greet", headers=bob)).status_code == 404
    assert (await api.client.get(CUSTOM, headers=bob)).json()["items"] == []
    catalog = (await api.client.get("/api/v1/node-types", headers=bob)).json()["items"]
    assert "acme.greet" not in {t["name"] for t in catalog}
    flow = "metadata: {name: Borrow}\nnodes:\n  g: {type: acme.greet, params: {name: x}}\n"
    refused = await api.client.post(FLOWS, content=flow, headers={**bob, **YAML_TYPE})
    assert refused.status_code == 400
    assert "unknown node type 'acme.greet'" in refused.text
    # bob may define his own type of the same name: it is his alone.
    mine = await _define(api, bob, GREET.replace("Greets", "Bob greets"))
    assert mine["version"] == 1
    alices = (await api.client.get(f"{CUSTOM}/acme.greet", headers=alice)).json()
    assert alices["description"] == "Greets params.name."
    assert (await api.client.delete(f"{CUSTOM}/acme.greet", headers=bob)).status_code == 204
    assert (await api.client.get(f"{CUSTOM}/acme.greet", headers=alice)).status_code == 200


async def test_versions_grow_with_each_save_and_runs_use_the_current_one(
    api: Api, alice: Headers
) -> None:
    await _define(api, alice, GREET)
    flow = await api.create_flow(
        alice, "metadata: {name: G}\nnodes:\n  g: {type: acme.greet, params: {name: Bo}}\n"
    )
    second = GREET.replace("return params.shout", "return 'v2 ' + (params.shout")
    second = second.replace("text.toUpperCase() : text;", "text.toUpperCase() : text);")
    put = await api.client.put(
        f"{CUSTOM}/acme.greet",
        params={"message": "prefix v2"},
        content=second,
        headers={**alice, **YAML_TYPE, "If-Match": '"1"'},
    )
    assert put.status_code == 200, put.text
    assert (put.json()["version"], put.headers["etag"]) == (2, '"2"')
    stale = await api.client.put(
        f"{CUSTOM}/acme.greet", content=second, headers={**alice, **YAML_TYPE, "If-Match": '"1"'}
    )
    assert stale.status_code == 412, stale.text  # as for flows
    assert error_of(stale)["code"] == "precondition_failed"
    assert "is at version 2, not 1" in error_of(stale)["message"]
    run = await api.client.post(
        f"{FLOWS}/{flow['id']}/run{WAIT}", json={"input": {"city": "Oslo"}}, headers=alice
    )
    assert run.json()["output"] == "v2 Hello, Bo from Oslo"

    versions = (await api.client.get(f"{CUSTOM}/acme.greet/versions", headers=alice)).json()
    assert [(v["version"], v["message"]) for v in versions["items"]] == [
        (2, "prefix v2"),
        (1, None),
    ]
    one = (await api.client.get(f"{CUSTOM}/acme.greet/versions/1", headers=alice)).json()
    assert one["script"] == GREET.split("script: |\n")[1].replace("  ", "", 1).replace("\n  ", "\n")
    page = (
        await api.client.get(f"{CUSTOM}/acme.greet/versions", params={"limit": 1}, headers=alice)
    ).json()
    assert [v["version"] for v in page["items"]] == [2]
    rest = await api.client.get(
        f"{CUSTOM}/acme.greet/versions",
        params={"limit": 1, "cursor": page["next_cursor"]},
        headers=alice,
    )
    assert [v["version"] for v in rest.json()["items"]] == [1]

    # Deleted: flows can no longer use it; runs of a saved flow fail at start, naming it.
    assert (await api.client.delete(f"{CUSTOM}/acme.greet", headers=alice)).status_code == 204
    failed = await api.client.post(f"{FLOWS}/{flow['id']}/run{WAIT}", json={}, headers=alice)
    assert failed.json()["status"] == "failed"
    assert "acme.greet" in str(failed.json()["error"])
    again = await _define(api, alice, GREET)
    assert again["version"] == 3  # the numbering goes on


async def test_bad_definitions_are_refused_with_every_problem(api: Api, alice: Headers) -> None:
    answer = await api.client.post(
        CUSTOM,
        json={
            "name": "greet",
            "params": {"type": "array"},
            "script": "",
            "actions": ["default", 3],
            "colour": "red",
        },
        headers=alice,
    )
    assert answer.status_code == 400
    paths = {d["path"] for d in error_of(answer)["details"]}
    assert paths == {"colour", "name", "params.type", "script", "actions[0]", "actions[1]"}
    clash = await api.client.post(
        CUSTOM, json={"name": "log.x", "script": "return 1"}, headers=alice
    )
    assert clash.status_code == 201  # namespaced: free
    builtin_alias = await api.client.post(
        CUSTOM, content=GREET.replace("acme.greet", "http.request"), headers={**alice, **YAML_TYPE}
    )
    assert builtin_alias.status_code == 400
    assert "clashes with the built-in" in builtin_alias.text
    twice = await api.client.post(
        CUSTOM, json={"name": "log.x", "script": "return 2"}, headers=alice
    )
    assert twice.status_code == 409
    bad_yaml = await api.client.post(CUSTOM, content="name: [", headers={**alice, **YAML_TYPE})
    assert bad_yaml.status_code == 400
    plain = await api.client.post(
        CUSTOM, content="x", headers={**alice, "content-type": "text/plain"}
    )
    assert plain.status_code == 415
    renamed = await api.client.put(
        f"{CUSTOM}/log.x", json={"name": "log.y", "script": "return 1"}, headers=alice
    )
    assert renamed.status_code == 400


async def test_concurrent_writes_of_one_name_take_turns(api: Api, alice: Headers) -> None:
    """Of concurrent creates of one name one is stored; of concurrent updates from one version
    (If-Match) one is stored, the others are told the type moved on."""
    tries = 8
    created = await asyncio.gather(
        *(
            api.client.post(
                CUSTOM, json={"name": "acme.once", "script": f"return {i}"}, headers=alice
            )
            for i in range(tries)
        )
    )
    assert sorted(r.status_code for r in created) == [201] + [409] * (tries - 1)
    updated = await asyncio.gather(
        *(
            api.client.put(
                f"{CUSTOM}/acme.once",
                json={"script": f"return {i}"},
                headers={**alice, "If-Match": '"1"'},
            )
            for i in range(tries)
        )
    )
    assert sorted(r.status_code for r in updated) == [200] + [412] * (tries - 1)
    versions = (await api.client.get(f"{CUSTOM}/acme.once/versions", headers=alice)).json()
    assert [v["version"] for v in versions["items"]] == [2, 1]
    current = (await api.client.get(f"{CUSTOM}/acme.once", headers=alice)).json()
    winner = next(r for r in updated if r.status_code == 200).json()
    assert current["script"] == winner["script"]


async def test_every_change_is_audited(api: Api, alice: Headers) -> None:
    await _define(api, alice, GREET)
    await api.client.put(f"{CUSTOM}/acme.greet", content=GREET, headers={**alice, **YAML_TYPE})
    await api.client.delete(f"{CUSTOM}/acme.greet", headers=alice)
    audit = (await api.client.get("/api/v1/audit", headers=alice)).json()["items"]
    actions = [(r["action"], r["target"]) for r in audit if r["action"].startswith("node_type")]
    assert sorted(actions) == [
        ("node_type.created", "node_type:acme.greet"),
        ("node_type.deleted", "node_type:acme.greet"),
        ("node_type.updated", "node_type:acme.greet"),
    ]


async def test_the_documented_example_defines_a_type_whose_action_routes_the_flow(
    api: Api, alice: Headers
) -> None:
    """examples/node-types/greet.yaml and the flow of docs/plugins.md, walk-through 4."""
    assert DOC_FLOW in (EXAMPLE.parents[2] / "docs" / "plugins.md").read_text()
    await _define(api, alice, EXAMPLE.read_text())
    flow = await api.create_flow(alice, DOC_FLOW)
    run = await api.client.post(
        f"{FLOWS}/{flow['id']}/run{WAIT}", json={"input": {"who": "Ada"}}, headers=alice
    )
    done = run.json()
    assert done["status"] == "completed", done
    logs = await api.client.get(f"/api/v1/executions/{done['id']}/logs", headers=alice)
    assert "HELLO, ADA!" in logs.text  # the log node ran: the loud edge was taken
