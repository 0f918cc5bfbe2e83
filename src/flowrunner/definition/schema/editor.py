"""The flow schema for editors (``flowrunner schema``): the format plus every node type's
params schema, so a YAML language server checks and completes ``params`` by ``type``.

Validation does not use this: it checks params against each type's own schema with ``${...}``
strings exempt (their value is known only at run time). An editor cannot exempt them, so
here every place that takes a non-string value also takes a string holding ``${``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from flowrunner.definition.schema import flow_schema

_EXPRESSION = {"type": "string", "pattern": r"\$\{"}
_SUBSCHEMAS = ("additionalProperties", "items")
_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")


def editor_schema(types: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The flow schema with ``params`` checked per node type (``types``: name → params
    schema, aliases included)."""
    schema = flow_schema()
    node = schema["$defs"]["node"]
    node["properties"]["type"]["examples"] = sorted(types)
    rules = [
        {
            "if": {"properties": {"type": {"const": name}}, "required": ["type"]},
            "then": {"properties": {"params": with_expressions(params)}},
        }
        for name, params in sorted(types.items())
    ]
    if rules:  # an empty allOf is not valid JSON Schema
        node["allOf"] = rules
    return schema


def with_expressions(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``schema`` where a ``${...}`` string is accepted wherever a value is."""
    out = copy.deepcopy(dict(schema))
    _widen(out)
    return out


def _widen(schema: dict[str, Any]) -> None:
    for key in ("properties", "patternProperties", "$defs"):
        for sub in (schema.get(key) or {}).values():
            if isinstance(sub, dict):
                _replace_in(sub)
    for key in _SUBSCHEMAS:
        if isinstance(schema.get(key), dict):
            _replace_in(schema[key])
    for key in _LISTS:
        for sub in schema.get(key) or ():
            if isinstance(sub, dict):
                _widen(sub)


def _replace_in(sub: dict[str, Any]) -> None:
    """Widen ``sub`` in place: recurse, then accept an expression if it takes no string."""
    _widen(sub)
    if _accepts_any_string(sub):
        return
    original = dict(sub)
    sub.clear()
    sub["anyOf"] = [original, _EXPRESSION]


def _accepts_any_string(schema: Mapping[str, Any]) -> bool:
    if any(key in schema for key in ("enum", "const", "pattern")):
        return False
    kinds = schema.get("type")
    if kinds is None:
        return not any(key in schema for key in _LISTS)
    return kinds == "string" or (isinstance(kinds, list) and "string" in kinds)
