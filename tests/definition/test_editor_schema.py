"""``flowrunner schema``: the flow schema with each node type's params, for editors."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from flowrunner.cli.app import app
from flowrunner.definition.schema.editor import editor_schema, with_expressions


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 0, result.output
    printed: dict[str, Any] = json.loads(result.stdout)
    return printed


def errors(schema: dict[str, Any], text: str) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema)
    return [e.message for e in validator.iter_errors(yaml.safe_load(text))]


def flow(params: str, node_type: str = "http.request") -> str:
    return f"metadata: {{name: f}}\nnodes:\n  n: {{type: {node_type}, params: {{{params}}}}}\n"


def test_the_printed_schema_names_the_built_in_types(schema: dict[str, Any]) -> None:
    node = schema["$defs"]["node"]
    assert "http.request" in node["properties"]["type"]["examples"]
    assert "transform" in node["properties"]["type"]["examples"]


def test_params_are_checked_by_type(schema: dict[str, Any]) -> None:
    assert errors(schema, flow("url: https://x.test, method: POST, timeout: 2s")) == []
    assert errors(schema, flow("method: POST")) != []  # url is required
    assert errors(schema, flow("url: https://x.test, method: FETCH")) != []
    assert errors(schema, flow("url: https://x.test, follow_redirects: 3")) != []
    assert errors(schema, flow("script: 'return 1'", "transform")) == []
    assert errors(schema, flow("url: 1", "transform")) != []  # script is required
    assert errors(schema, flow("anything: 1", "my.plugin")) == []  # unknown types: free


def test_expressions_are_accepted_where_a_value_of_another_type_is_expected(
    schema: dict[str, Any],
) -> None:
    text = flow(
        'url: "${input.u}", method: "${input.m}", headers: "${input.h}", '
        'follow_redirects: "${input.f}", timeout: "${input.t}"'
    )
    assert errors(schema, text) == []
    assert errors(schema, flow("url: https://x.test, follow_redirects: 'no'")) != []


def test_with_expressions_leaves_the_original_untouched() -> None:
    original = {"type": "object", "properties": {"n": {"type": "integer"}}}
    widened = with_expressions(original)
    assert original == {"type": "object", "properties": {"n": {"type": "integer"}}}
    assert widened["properties"]["n"]["anyOf"][0] == {"type": "integer"}
    assert "allOf" not in editor_schema({})["$defs"]["node"]


def test_the_data_nodes_params_are_checked_by_type(schema: dict[str, Any]) -> None:
    assert errors(schema, flow("operation: get, key: k", "store")) == []
    assert errors(schema, flow('operation: list, limit: "${input.n}"', "store")) == []
    assert errors(schema, flow("operation: get, keys: k", "store")) != []
    assert errors(schema, flow("dsn: 'postgresql://h/db', operation: execute, query: 'SELECT 1'",
                               "postgres")) == []  # fmt: skip
    assert errors(schema, flow("operation: execute, query: 'SELECT 1'", "postgres")) != []
    assert errors(schema, flow("table_name: tbl, operation: get_item, key: {k: 1}",
                               "dynamodb")) == []  # fmt: skip
    assert errors(schema, flow("table_name: tbl, operation: scan", "dynamodb")) != []
