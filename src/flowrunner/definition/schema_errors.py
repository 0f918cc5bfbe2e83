"""jsonschema errors → Problems with readable messages, dotted paths and positions.

Unknown keys (``additionalProperties``) become warnings with a did-you-mean hint: a typo in
an optional key should be visible, but the original format tolerated extra keys.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from flowrunner.definition.source import Path, SourceMap, dotted
from flowrunner.durations import DURATION_HINT
from flowrunner.errors import Problem

if TYPE_CHECKING:
    import jsonschema

_REQUIRED = re.compile(r"^'(.+)' is a required property$")
_JSON_TYPE = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "boolean": "true or false",
    "null": "null",
}


def schema_problems(
    errors: Iterable[jsonschema.ValidationError],
    positions: SourceMap,
    *,
    prefix: Path = (),
    skip_expressions: bool = False,
) -> Iterator[Problem]:
    """Problems for ``errors``; ``prefix`` locates the validated value in the document.

    With ``skip_expressions`` a value that is a ``${...}`` string is not judged: its type is
    only known at run time.
    """
    for error in errors:
        if skip_expressions and isinstance(error.instance, str) and "${" in error.instance:
            continue
        path: Path = (*prefix, *error.absolute_path)
        yield from _problems(error, path, positions)


def _problems(
    error: jsonschema.ValidationError, path: Path, positions: SourceMap
) -> Iterator[Problem]:
    kind = error.validator
    schema: Mapping[str, Any] = error.schema if isinstance(error.schema, Mapping) else {}
    instance = error.instance
    if kind == "additionalProperties" and isinstance(instance, Mapping):
        known = list(schema.get("properties", {}))
        for key in instance:
            if key in known:
                continue
            close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
            yield _at(
                positions,
                (*path, key),
                f"unknown key '{key}'",
                "warning",
                f"did you mean '{close[0]}'?"
                if close
                else (f"known keys: {', '.join(known)}" if known else None),
                key=True,
            )
        return
    if kind == "required":
        m = _REQUIRED.match(error.message)
        name = m.group(1) if m else None
        message = f"missing required key '{name}'" if name else error.message
        problem = _at(positions, path, message, "error", None, key=True)
        if name:  # name the missing key in the path; the position stays its parent's
            problem = replace(problem, path=dotted((*path, name)))
        yield problem
        return
    if schema.get("format") == "duration" and kind in ("pattern", "type", "minimum"):
        yield _at(positions, path, f"invalid duration {instance!r}", "error", DURATION_HINT)
        return
    yield _at(positions, path, _message(error, instance, schema), "error", _hint(error, instance))


def _message(error: jsonschema.ValidationError, instance: Any, schema: Mapping[str, Any]) -> str:
    kind = error.validator
    wanted: Any = error.validator_value
    if kind == "type":
        names = [wanted] if isinstance(wanted, str) else list(wanted)
        expected = " or ".join(_JSON_TYPE.get(n, n) for n in names)
        return f"expected {expected}, got {_describe(instance)}"
    if kind == "enum":
        choices = ", ".join(str(c) for c in wanted)
        return f"{instance!r} is not one of: {choices}"
    if kind == "const":
        return f"must be {wanted!r}"
    if kind == "minLength" and wanted == 1:
        return "must not be empty"
    if kind == "minProperties" and wanted == 1:
        return "must have at least one entry"
    if kind == "minItems" and wanted == 1:
        return "must have at least one item"
    if kind == "propertyNames":
        return f"invalid key {instance!r}"
    if kind == "anyOf" and all(isinstance(s, Mapping) and set(s) == {"required"} for s in wanted):
        keys = [k for s in wanted for k in s["required"]]
        return f"needs one of the keys: {', '.join(keys)}"
    return str(error.message)


def _hint(error: jsonschema.ValidationError, instance: Any) -> str | None:
    choices: Any = error.validator_value
    if error.validator == "enum" and isinstance(instance, str):
        close = difflib.get_close_matches(instance, [str(c) for c in choices], 1)
        return f"did you mean '{close[0]}'?" if close else None
    return None


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


def _at(
    positions: SourceMap,
    path: Path,
    message: str,
    severity: str,
    hint: str | None,
    *,
    key: bool = False,
) -> Problem:
    line, column = (positions.key(path) if key else positions.value(path)) or (None, None)
    return Problem(
        dotted(path), message, line, column, "warning" if severity == "warning" else "error", hint
    )
