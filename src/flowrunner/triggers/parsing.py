"""A trigger given over the API (``{"webhook": {...}}`` or ``{"schedule": {...}}``), checked
by the same schema and rules as a flow file's ``triggers:`` entry."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from flowrunner.definition.schema import flow_schema
from flowrunner.definition.triggers import TriggerSpec, build_triggers, check_triggers
from flowrunner.errors import InvalidInput

if TYPE_CHECKING:
    import jsonschema


@cache
def _validator() -> jsonschema.Draft202012Validator:
    import jsonschema  # by the first trigger parsed (see definition/validate.py)

    schema = flow_schema()
    return jsonschema.Draft202012Validator({"$ref": "#/$defs/trigger", "$defs": schema["$defs"]})


def parse_trigger(entry: Mapping[str, Any]) -> TriggerSpec:
    """The spec of one trigger entry; ``InvalidInput`` naming every problem."""
    problems = [
        {"path": ".".join(str(p) for p in e.absolute_path) or "(trigger)", "message": e.message}
        for e in _validator().iter_errors(entry)
    ]
    if not problems:
        document = {"triggers": [entry]}
        check_triggers(
            document,
            lambda path, message: problems.append(
                {"path": ".".join(str(p) for p in path[2:]), "message": message}
            ),
        )
    if problems:
        first = problems[0]
        raise InvalidInput(
            f"invalid trigger: {first['path']}: {first['message']}", problems=problems
        )
    return build_triggers({"triggers": [entry]})[0]
