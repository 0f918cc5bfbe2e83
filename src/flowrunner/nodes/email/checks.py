"""Resolved params checked against the node type's schema before anything is sent.

The schema is checked when a flow is loaded, but a ``${...}`` value is only known at run
time: ``to: ${input.who}`` may turn out to be a number. Checking the resolved params again
gives the same clear message (the param's path and what is wrong) instead of a failure deep
inside the mail library.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from flowrunner.expressions import thaw
from flowrunner.nodes.email.connection import EmailError

if TYPE_CHECKING:
    import jsonschema

__all__ = ["check_params", "params_validator"]


def params_validator(schema: Mapping[str, Any]) -> Callable[[], jsonschema.protocols.Validator]:
    """The validator for a node type's params schema, checked and built at its first use:
    the email nodes load with every server, most of which never send one."""

    @cache
    def validator() -> jsonschema.protocols.Validator:
        import jsonschema

        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(dict(schema))
        built: jsonschema.protocols.Validator = cls(schema)
        return built

    return validator


def check_params(
    node_type: str,
    validator: Callable[[], jsonschema.protocols.Validator],
    params: Mapping[str, Any],
    numbers: frozenset[str],
) -> dict[str, Any]:
    """``params`` with the ``numbers`` params that are digit strings made ints; EmailError
    naming the first problem when they break ``schema``."""
    checked: dict[str, Any] = thaw(params)
    for name in numbers:
        value = checked.get(name)
        if isinstance(value, str) and value.strip().isdigit():
            checked[name] = int(value)
    from jsonschema.exceptions import best_match

    error = best_match(validator().iter_errors(checked))
    if error is not None:
        where = "params" + "".join(
            f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path
        )
        raise EmailError(f"{node_type}: {where}: {_short(error)}", reason="invalid_params")
    return checked


def _short(error: jsonschema.ValidationError) -> str:
    # The library's message quotes the whole value; a long body or attachment would flood
    # the error (and the run's events) with it.
    message = error.message
    return message if len(message) <= 300 else message[:300] + "…"
