"""The flow registry over HTTP: create (YAML or JSON), read, search, update, versions."""

from __future__ import annotations

from tests.api.helpers import BROKEN_FLOW, YAML_TYPE, Api, Headers, error_of, flow_yaml

FLOWS = "/api/v1/flows"


async def test_create_from_yaml_returns_201_with_version_1_and_metadata(
    api: Api, alice: Headers
) -> None:
    response = await api.client.post(FLOWS, content=flow_yaml(), headers={**alice, **YAML_TYPE})
    assert response.status_code == 201
    body = response.json()
    assert body["version"] == 1
    assert body["name"] == "Greeter"
    assert body["description"] == "Says hello"
    assert body["content"] == flow_yaml()
    assert response.headers["etag"] == '"1"'
    assert response.headers["location"] == f"{FLOWS}/{body['id']}"


async def test_create_from_json_as_in_the_original(api: Api, alice: Headers) -> None:
    response = await api.client.post(
        FLOWS, json={"name": "Named", "content": flow_yaml(), "tags": ["a"]}, headers=alice
    )
    assert response.status_code == 201
    assert response.json()["name"] == "Named"
    assert response.json()["tags"] == ["a"]


async def test_invalid_yaml_is_a_400_listing_every_problem_with_line_and_column(
    api: Api, alice: Headers
) -> None:
    response = await api.client.post(FLOWS, content=BROKEN_FLOW, headers={**alice, **YAML_TYPE})
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_flow"
    located = {(p["path"], p["line"], p["column"]) for p in error["details"]}
    assert ("nodes.a.type", 5, 11) in located
    assert ("nodes.a.next.default", 6, 21) in located
    assert any(path.startswith("nodes.b") and line == 9 for path, line, _ in located)
    assert (await api.client.get(FLOWS, headers=alice)).json()["items"] == []


async def test_yaml_that_does_not_parse_points_at_the_line(api: Api, alice: Headers) -> None:
    text = "metadata:\n  name: x\nnodes: [unclosed\n"
    response = await api.client.post(FLOWS, content=text, headers={**alice, **YAML_TYPE})
    assert response.status_code == 400
    (problem,) = error_of(response)["details"]
    assert problem["line"] is not None
    assert problem["column"] is not None


async def test_get_returns_metadata_and_yaml_or_the_raw_yaml_on_accept(
    api: Api, alice: Headers
) -> None:
    flow = await api.create_flow(alice)
    as_json = await api.client.get(f"{FLOWS}/{flow['id']}", headers=alice)
    assert as_json.json()["content"] == flow_yaml()
    raw = await api.client.get(
        f"{FLOWS}/{flow['id']}", headers={**alice, "accept": "application/yaml"}
    )
    assert raw.status_code == 200
    assert raw.headers["content-type"].startswith("application/yaml")
    assert raw.text == flow_yaml()


async def test_list_paginates_with_a_cursor_and_filters(api: Api, alice: Headers) -> None:
    for i in range(3):
        await api.create_flow(alice, flow_yaml(name=f"Orders{i}"))
    await api.create_flow(alice, flow_yaml(name="Invoices", description="monthly close"))
    first = (await api.client.get(FLOWS, params={"limit": 3}, headers=alice)).json()
    assert [f["name"] for f in first["items"]] == ["Invoices", "Orders2", "Orders1"]
    second = (
        await api.client.get(
            FLOWS, params={"limit": 3, "cursor": first["next_cursor"]}, headers=alice
        )
    ).json()
    assert [f["name"] for f in second["items"]] == ["Orders0"]
    assert second["next_cursor"] is None

    by_name = await api.client.get(FLOWS, params={"name": "orders1"}, headers=alice)
    assert [f["name"] for f in by_name.json()["items"]] == ["Orders1"]
    by_text = await api.client.get(FLOWS, params={"description": "MONTHLY"}, headers=alice)
    assert [f["name"] for f in by_text.json()["items"]] == ["Invoices"]


async def test_tags_are_patched_and_filtered(api: Api, alice: Headers) -> None:
    tagged = await api.create_flow(alice, flow_yaml(name="Tagged"))
    await api.create_flow(alice, flow_yaml(name="Plain"))
    patched = await api.client.patch(
        f"{FLOWS}/{tagged['id']}", json={"tags": ["ops", "daily"]}, headers=alice
    )
    assert patched.status_code == 200
    assert patched.json()["tags"] == ["ops", "daily"]
    assert patched.json()["version"] == 1
    found = await api.client.get(FLOWS, params=[("tag", "ops"), ("tag", "daily")], headers=alice)
    assert [f["name"] for f in found.json()["items"]] == ["Tagged"]


async def test_invalid_cursor_is_a_400(api: Api, alice: Headers) -> None:
    response = await api.client.get(FLOWS, params={"cursor": "garbage"}, headers=alice)
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_cursor"


async def test_put_stores_a_new_version_and_if_match_prevents_lost_updates(
    api: Api, alice: Headers
) -> None:
    flow = await api.create_flow(alice)
    url = f"{FLOWS}/{flow['id']}"
    ok = await api.client.put(
        url, content=flow_yaml(value="v2"), headers={**alice, **YAML_TYPE, "if-match": '"1"'}
    )
    assert ok.status_code == 200
    assert ok.json()["version"] == 2
    assert ok.headers["etag"] == '"2"'
    stale = await api.client.put(
        url, content=flow_yaml(value="v3"), headers={**alice, **YAML_TYPE, "if-match": '"1"'}
    )
    assert stale.status_code == 412
    assert error_of(stale)["code"] == "precondition_failed"
    assert (await api.client.get(url, headers=alice)).json()["version"] == 2


async def test_put_with_invalid_yaml_is_a_400_and_keeps_the_version(
    api: Api, alice: Headers
) -> None:
    flow = await api.create_flow(alice)
    url = f"{FLOWS}/{flow['id']}"
    response = await api.client.put(url, content=BROKEN_FLOW, headers={**alice, **YAML_TYPE})
    assert response.status_code == 400
    assert (await api.client.get(url, headers=alice)).json()["version"] == 1


async def test_versions_diff_and_restore(api: Api, alice: Headers) -> None:
    flow = await api.create_flow(alice, flow_yaml(value="one"))
    url = f"{FLOWS}/{flow['id']}"
    await api.client.put(url, json={"content": flow_yaml(value="two")}, headers=alice)

    versions = (await api.client.get(f"{url}/versions", headers=alice)).json()
    assert [v["number"] for v in versions["items"]] == [2, 1]
    v1 = (await api.client.get(f"{url}/versions/1", headers=alice)).json()
    assert v1["content"] == flow_yaml(value="one")

    diff = await api.client.get(f"{url}/diff", params={"from": 1, "to": 2}, headers=alice)
    assert "-      values: {greeting: one}\n" in diff.json()["diff"]
    assert "+      values: {greeting: two}\n" in diff.json()["diff"]

    restored = await api.client.post(f"{url}/versions/1/restore", headers=alice)
    assert restored.status_code == 200
    assert restored.json()["version"] == 3
    assert restored.json()["content"] == flow_yaml(value="one")
    missing = await api.client.get(f"{url}/versions/9", headers=alice)
    assert missing.status_code == 404


async def test_delete_hides_the_flow(api: Api, alice: Headers) -> None:
    flow = await api.create_flow(alice)
    url = f"{FLOWS}/{flow['id']}"
    assert (await api.client.delete(url, headers=alice)).status_code == 204
    assert (await api.client.get(url, headers=alice)).status_code == 404
    assert (await api.client.delete(url, headers=alice)).status_code == 404
    assert (await api.client.get(FLOWS, headers=alice)).json()["items"] == []


async def test_validate_reports_problems_without_saving(api: Api, alice: Headers) -> None:
    bad = await api.client.post(
        f"{FLOWS}/validate", content=BROKEN_FLOW, headers={**alice, **YAML_TYPE}
    )
    assert bad.status_code == 200
    assert bad.json()["valid"] is False
    assert all(p["line"] for p in bad.json()["problems"] if p["severity"] == "error")
    good = await api.client.post(f"{FLOWS}/validate", json={"content": flow_yaml()}, headers=alice)
    assert good.json() == {"valid": True, "problems": []}
    assert (await api.client.get(FLOWS, headers=alice)).json()["items"] == []


async def test_unknown_media_type_is_a_415(api: Api, alice: Headers) -> None:
    response = await api.client.post(
        FLOWS, content=b"<flow/>", headers={**alice, "content-type": "application/xml"}
    )
    assert response.status_code == 415


async def test_version_messages_from_a_json_body_or_the_query_and_blank_means_none(
    api: Api, alice: Headers
) -> None:
    created = await api.client.post(
        FLOWS, json={"content": flow_yaml(), "message": "  first  "}, headers=alice
    )
    flow_id = created.json()["id"]
    url = f"{FLOWS}/{flow_id}"
    second = flow_yaml().replace("Says hello", "Says hi")
    put = await api.client.put(
        url, params={"message": "from the query"}, content=second, headers={**alice, **YAML_TYPE}
    )
    assert put.status_code == 200
    blank = await api.client.put(
        url, json={"content": flow_yaml(), "message": "   "}, headers=alice
    )
    assert blank.status_code == 200
    too_long = await api.client.put(
        url, json={"content": second, "message": "x" * 1001}, headers=alice
    )
    assert too_long.status_code == 422
    restored = await api.client.post(f"{url}/versions/2/restore", headers=alice)
    assert restored.status_code == 200
    page = (await api.client.get(f"{url}/versions", headers=alice)).json()
    assert [(v["number"], v["message"]) for v in page["items"]] == [
        (4, "restored version 2"),
        (3, None),
        (2, "from the query"),
        (1, "first"),
    ]
    one = (await api.client.get(f"{url}/versions/2", headers=alice)).json()
    assert one["message"] == "from the query"
