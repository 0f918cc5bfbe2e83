from __future__ import annotations

from pathlib import Path

import jsonschema

from flowrunner.definition import flow_schema
from flowrunner.definition.source import parse_yaml

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_schema_is_valid_draft_2020_12() -> None:
    schema = flow_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_each_call_returns_a_fresh_copy() -> None:
    flow_schema()["properties"].clear()
    assert "nodes" in flow_schema()["properties"]


def test_the_example_flows_match_the_schema() -> None:
    validator = jsonschema.Draft202012Validator(flow_schema())
    # examples/node-types/ holds account node type definitions, not flows.
    files = sorted(p for p in EXAMPLES.rglob("*.yaml") if "node-types" not in p.parts)
    assert files
    for path in files:
        errors = list(validator.iter_errors(parse_yaml(path.read_text()).data))
        assert errors == [], path
