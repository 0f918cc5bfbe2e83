"""What an account writes to define a node type, and the checks it must pass to be saved.

```yaml
name: acme.greet                # a dotted name (letters, digits, _ and -), with at least one dot
description: Greets someone.
params:                         # JSON Schema of a node's params (an object schema)
  type: object
  properties: {name: {type: string}}
  required: [name]
script: |                       # a function body, as a transform's script
  return `Hello, ${params.name}!`;
actions: [shy]                  # optional: actions the script may pick besides default
```

Every problem is reported at once (``InvalidInput`` with ``details``), each with the field it
is about.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flowrunner.errors import InvalidInput
from flowrunner.plugins.contract import MAX_NAME, NAME

MAX_DESCRIPTION = 2000
MAX_SCHEMA_BYTES = 65_536
MAX_ACTIONS = 50
RESERVED_ACTIONS = frozenset({"default", "error"})
FIELDS = frozenset({"name", "description", "params", "script", "actions"})


@dataclass(frozen=True, slots=True)
class CustomTypeSpec:
    """A checked definition: what one version of an account's node type holds."""

    name: str
    description: str
    params: Mapping[str, Any]
    script: str
    actions: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "params": dict(self.params),
            "script": self.script,
            "actions": list(self.actions),
        }


def parse_spec(data: Any, *, max_script_bytes: int) -> CustomTypeSpec:
    """``data`` (parsed YAML or JSON) as a checked spec; InvalidInput listing every problem."""
    if not isinstance(data, Mapping):
        raise InvalidInput("a node type definition is an object (name, description, ...)")
    problems: list[dict[str, str]] = []

    def problem(field: str, message: str) -> None:
        problems.append({"path": field, "message": message})

    for unknown in sorted(set(map(str, data)) - FIELDS):
        problem(unknown, f"unknown field '{unknown}' (expected {', '.join(sorted(FIELDS))})")
    name = data.get("name")
    if not isinstance(name, str) or not NAME.match(name) or len(name) > MAX_NAME:
        problem("name", "a dotted name of letters, digits, _ and - (acme.crm.lookup)")
    elif "." not in name:
        problem("name", f"use a namespaced name such as 'my.{name}' (names without a dot "
                "are the built-ins')")  # fmt: skip
    description = data.get("description", "")
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        problem("description", f"a string of at most {MAX_DESCRIPTION} characters")
    params = data.get("params", {"type": "object"})
    _check_schema(params, problem)
    script = data.get("script")
    if not isinstance(script, str) or not script.strip():
        problem("script", "a non-empty JavaScript function body")
    elif len(script.encode()) > max_script_bytes:
        problem("script", f"over the limit of {max_script_bytes} bytes")
    actions = data.get("actions", [])
    if not isinstance(actions, list) or len(actions) > MAX_ACTIONS:
        problem("actions", f"a list of at most {MAX_ACTIONS} action names")
        actions = []
    for index, action in enumerate(actions):
        if not isinstance(action, str) or not action or len(action) > MAX_NAME:
            problem(f"actions[{index}]", "a non-empty action name")
        elif action in RESERVED_ACTIONS:
            problem(f"actions[{index}]", f"'{action}' is implied: list the other actions")
    if problems:
        raise InvalidInput(
            "invalid node type: " + "; ".join(f"{p['path']}: {p['message']}" for p in problems),
            details=problems,
        )
    return CustomTypeSpec(
        name=str(name),
        description=str(description),
        params=dict(params),
        script=str(script),
        actions=tuple(dict.fromkeys(actions)),
    )


def _check_schema(params: Any, problem: Any) -> None:
    if not isinstance(params, Mapping):
        problem("params", "a JSON Schema object describing the node's params")
        return
    try:
        text = json.dumps(params)
    except (TypeError, ValueError) as exc:
        problem("params", f"not JSON: {exc}")
        return
    if len(text) > MAX_SCHEMA_BYTES:
        problem("params", f"over the limit of {MAX_SCHEMA_BYTES} bytes")
        return
    if params.get("type", "object") != "object":
        problem("params.type", "a node's params are an object: the schema's type is 'object'")
    import jsonschema  # by the first custom type saved, not by every server start

    try:
        jsonschema.validators.validator_for(params).check_schema(dict(params))
    except jsonschema.SchemaError as exc:
        where = ".".join(str(p) for p in exc.path)
        problem("params" + (f".{where}" if where else ""), f"invalid JSON Schema: {exc.message}")
