"""Plain scalars follow the YAML 1.2 core schema; a warning names each params value the
original flowrunner (yaml.v2, YAML 1.1) read differently."""

from __future__ import annotations

import math
from typing import Any

import pytest

from flowrunner.definition import load_flow, validate_flow
from flowrunner.definition.source import parse_yaml


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("true", True),
        ("TRUE", True),
        ("False", False),
        ("yes", "yes"),
        ("off", "off"),
        ("y", "y"),
        ("~", None),
        ("null", None),
        ("010", 10),
        ("0o17", 15),
        ("0x1F", 31),
        ("-12", -12),
        ("1_000", "1_000"),
        ("0b101", "0b101"),
        ("1.5e3", 1500.0),
        ("1e3", 1000.0),
        (".5", 0.5),
        ("-.inf", -math.inf),
        ("1:30", "1:30"),
        ("2024-01-02", "2024-01-02"),
        ("'yes'", "yes"),
        ("!!str 12", "12"),
    ],
)
def test_plain_scalars_follow_the_yaml_1_2_core_schema(text: str, value: Any) -> None:
    assert parse_yaml(f"v: {text}\n").data == {"v": value}


def test_nan_is_a_float() -> None:
    assert math.isnan(parse_yaml("v: .nan\n").data["v"])


FLOW = """\
metadata: {name: Scalars, version: 010}
nodes:
  a:
    type: set
    params:
      values: {ok: yes, mode: 010, big: 1_000, same: 1.5e3, fine: true, quoted: "no", n: 7}
"""


def test_values_the_original_read_differently_are_warnings_with_their_position() -> None:
    problems = validate_flow(FLOW)
    assert [(p.severity, p.line, p.column, p.path) for p in problems] == [
        ("warning", 6, 20, "nodes.a.params.values.ok"),
        ("warning", 6, 31, "nodes.a.params.values.mode"),
        ("warning", 6, 41, "nodes.a.params.values.big"),
    ]
    ok, mode, big = (p.message for p in problems)
    assert ok == "'yes' is text (YAML 1.2); the original flowrunner read it as the boolean true"
    assert mode == (
        "'010' is the number 10 (YAML 1.2); the original flowrunner read it as the number 8"
    )
    assert big == "'1_000' is text (YAML 1.2); the original flowrunner read it as the number 1000"
    assert (
        problems[0].hint == "write true for the original's value, or quote it ('yes') for the text"
    )
    # Warnings only: the flow loads with the YAML 1.2 values.
    definition = load_flow(FLOW)
    assert definition.nodes["a"].params["values"]["ok"] == "yes"
    assert definition.nodes["a"].params["values"]["mode"] == 10
    assert definition.metadata.version == "010"  # free text, as written (the original too)


@pytest.mark.parametrize("version", ["1.10", "2", "1.0", "010"])
def test_a_numeric_version_is_kept_as_written(version: str) -> None:
    text = (
        f"metadata: {{name: v, version: {version}}}\n"
        "nodes:\n  a: {type: log, params: {message: m}}\n"
    )
    assert load_flow(text).metadata.version == version


def test_keys_and_typed_fields_are_not_compared_with_the_original() -> None:
    text = "metadata: {name: no}\nnodes:\n  y: {type: log, params: {message: hi}}\n"
    assert validate_flow(text) == []
