"""The flow JSON Schema with every node type's params schema in it (``flowrunner schema``).

The file format's schema (``flow.schema.json``) knows ``params`` only as an object; editors
(yaml-language-server) complete and check params when the schema also says, per ``type``,
what they are. Each node type adds ``if type is T then params follows T's schema``. A param
may always be a ``${...}`` expression instead: its value is only known when the node runs.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flowrunner.definition.schema import flow_schema

if TYPE_CHECKING:
    from flowrunner.plugins import NodeTypeRegistry

EXPRESSION = {"type": "string", "pattern": r"\$\{", "description": "a ${...} expression"}


def flow_schema_with_node_types(registry: NodeTypeRegistry) -> dict[str, Any]:
    schema = flow_schema()
    rules = []
    for name in registry.names():
        node_type = registry.get(name)
        params = _expressions_allowed(node_type.params_schema)
        rules.append(
            {
                "if": {"properties": {"type": {"const": name}}, "required": ["type"]},
                "then": {
                    "properties": {"params": {**params, "description": node_type.description}}
                },
            }
        )
    schema["$defs"]["node"]["allOf"] = rules
    schema["$defs"]["node"]["properties"]["type"]["examples"] = registry.names()
    return schema


def _expressions_allowed(params: Mapping[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(dict(params))
    properties = result.get("properties")
    if isinstance(properties, dict):
        result["properties"] = {
            key: {"anyOf": [sub, EXPRESSION]} if sub else sub for key, sub in properties.items()
        }
    return result
