"""``GET /api/v1/flows/{id}/graph``: a version's nodes and edges, per account."""

from __future__ import annotations

from tests.api.helpers import YAML_TYPE, Api, Headers, flow_yaml
from tests.e2e.dashboard_flows import BRANCHY

FLOWS = "/api/v1/flows"


async def test_graph_of_the_current_version_has_nodes_edges_and_start(
    api: Api, alice: Headers
) -> None:
    created = await api.client.post(FLOWS, content=BRANCHY, headers={**alice, **YAML_TYPE})
    flow_id = created.json()["id"]
    response = await api.client.get(f"{FLOWS}/{flow_id}/graph", headers=alice)
    assert response.status_code == 200, response.text
    graph = response.json()
    assert (graph["flow_id"], graph["version"], graph["start"]) == (flow_id, 1, "check")
    assert [n["id"] for n in graph["nodes"]] == ["check", "route", "notify", "archive", "alert"]
    assert {"source": "check", "target": "alert", "action": "error"} in graph["edges"]
    assert graph["nodes"][0]["retries"] == 2


async def test_graph_of_an_older_version_on_request(api: Api, alice: Headers) -> None:
    created = await api.client.post(FLOWS, content=flow_yaml(), headers={**alice, **YAML_TYPE})
    flow_id = created.json()["id"]
    await api.client.put(f"{FLOWS}/{flow_id}", content=BRANCHY, headers={**alice, **YAML_TYPE})
    old = (await api.client.get(f"{FLOWS}/{flow_id}/graph?version=1", headers=alice)).json()
    new = (await api.client.get(f"{FLOWS}/{flow_id}/graph", headers=alice)).json()
    assert ([n["id"] for n in old["nodes"]], old["version"]) == (["greet"], 1)
    assert (len(new["nodes"]), new["version"]) == (5, 2)


async def test_another_accounts_flow_graph_is_not_found(
    api: Api, alice: Headers, bob: Headers
) -> None:
    created = await api.client.post(FLOWS, content=BRANCHY, headers={**alice, **YAML_TYPE})
    response = await api.client.get(f"{FLOWS}/{created.json()['id']}/graph", headers=bob)
    assert response.status_code == 404
    missing = await api.client.get(f"{FLOWS}/{created.json()['id']}/graph?version=9", headers=alice)
    assert missing.status_code == 404
