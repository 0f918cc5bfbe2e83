"""Structured output: read a reply as JSON and check it against the node's JSON Schema.

A reply that does not parse or does not match is sent back to the model with what is wrong
(``repair_message``), up to the node's ``max_repairs`` times; the node then fails.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

MAX_PROBLEM_CHARS = 500


def check_schema(schema: Mapping[str, Any]) -> str | None:
    """Why ``schema`` is not a usable JSON Schema, or None."""
    # jsonschema is imported by the first structured output, not with the node type.
    import jsonschema
    from jsonschema.exceptions import SchemaError

    try:
        jsonschema.validators.validator_for(schema).check_schema(dict(schema))
    except SchemaError as exc:
        return exc.message
    return None


def parse_reply(content: str | None, schema: Mapping[str, Any]) -> tuple[Any, str | None]:
    """``(value, None)`` for a valid reply, ``(None, problem)`` otherwise."""
    text = _unfenced(content or "")
    if not text:
        return None, "the reply is empty, not JSON"
    try:
        value = json.loads(text)
    except ValueError as exc:
        return None, f"the reply is not valid JSON ({exc})"
    if schema:
        import jsonschema
        from jsonschema.exceptions import best_match

        validator = jsonschema.validators.validator_for(schema)(schema)
        error = best_match(validator.iter_errors(value))
        if error is not None:
            where = error.json_path
            return None, f"at {where}: {error.message}"[:MAX_PROBLEM_CHARS]
    return value, None


def repair_message(problem: str, schema: Mapping[str, Any]) -> dict[str, str]:
    """The user turn that asks for a corrected reply."""
    return {
        "role": "user",
        "content": (
            f"Your reply does not match the required JSON Schema: {problem}. Reply again with "
            f"only the corrected JSON value, no prose. The schema: {json.dumps(dict(schema))}"
        ),
    }


def _unfenced(text: str) -> str:
    """The JSON inside a Markdown code fence, which models add even when told not to."""
    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = stripped.split("\n", 1)[1] if "\n" in stripped else ""
        if stripped.rstrip().endswith("```"):
            stripped = stripped.rstrip()[:-3]
    return stripped.strip()
