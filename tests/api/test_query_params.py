"""A query parameter given twice is a 422 where the route takes one value (FastAPI would keep
the last silently); list parameters repeat freely. A date-time filter is ISO 8601 text, not
a bare number."""

from __future__ import annotations

from tests.api.helpers import YAML_TYPE, Api, Headers, error_of, flow_yaml


async def test_a_repeated_single_valued_filter_is_a_422_naming_it(api: Api, alice: Headers) -> None:
    response = await api.client.get(
        "/api/v1/executions?flow_id=a&flow_id=b&status=queued", headers=alice
    )
    assert response.status_code == 422, response.text
    error = error_of(response)
    assert error["code"] == "validation_error"
    assert [d["loc"] for d in error["details"]] == [["query", "flow_id"]]
    assert "2 times" in error["details"][0]["message"]


async def test_each_repeated_single_valued_parameter_is_named(api: Api, alice: Headers) -> None:
    response = await api.client.get(
        "/api/v1/flows?name=a&name=b&description=x&description=y", headers=alice
    )
    assert response.status_code == 422, response.text
    locs = sorted(tuple(d["loc"]) for d in error_of(response)["details"])
    assert locs == [("query", "description"), ("query", "name")]


async def test_a_list_parameter_repeats_and_filters_on_every_value(
    api: Api, alice: Headers
) -> None:
    created = await api.client.post(
        "/api/v1/flows", content=flow_yaml(), headers={**alice, **YAML_TYPE}
    )
    assert created.status_code == 201, created.text
    flow_id = created.json()["id"]
    tagged = await api.client.patch(
        f"/api/v1/flows/{flow_id}", json={"tags": ["red", "blue"]}, headers=alice
    )
    assert tagged.status_code == 200, tagged.text
    both = await api.client.get("/api/v1/flows?tag=red&tag=blue", headers=alice)
    assert both.status_code == 200, both.text
    assert [f["id"] for f in both.json()["items"]] == [flow_id]
    neither = await api.client.get("/api/v1/flows?tag=red&tag=green", headers=alice)
    assert neither.status_code == 200
    assert neither.json()["items"] == []


async def test_a_name_the_route_does_not_take_is_ignored_repeated_or_not(
    api: Api, alice: Headers
) -> None:
    response = await api.client.get("/api/v1/executions?unused=1&unused=2", headers=alice)
    assert response.status_code == 200, response.text


async def test_a_date_time_filter_takes_iso_text_not_a_bare_number(
    api: Api, alice: Headers
) -> None:
    number = await api.client.get("/api/v1/flows?created_before=0.0", headers=alice)
    assert number.status_code == 422, number.text
    assert error_of(number)["details"][0]["loc"] == ["query", "created_before"]
    iso = await api.client.get(
        "/api/v1/executions?created_before=2999-01-01T00:00:00Z", headers=alice
    )
    assert iso.status_code == 200, iso.text
