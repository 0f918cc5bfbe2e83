"""What may enter a run: its input is checked once, before anything is stored or started."""

from __future__ import annotations

from collections.abc import Mapping

from flowrunner import jsontext
from flowrunner.errors import InvalidInput
from flowrunner.storage.records import JSONValue


def check_run_input(run_input: JSONValue, max_bytes: int) -> None:
    """``InvalidInput`` naming the ``input`` field unless it is a JSON object of at most
    ``max_bytes`` (as JSON text) that is valid Unicode throughout."""
    if not isinstance(run_input, Mapping):
        raise InvalidInput(
            f"input must be a JSON object, got {type(run_input).__name__}", field="input"
        )
    try:
        text = jsontext.dumps(run_input)
        size = len(text.encode())
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"input is not JSON: {exc}", field="input") from exc
    if "\\ud" in text and jsontext.has_lone_surrogate(run_input):
        # Not Unicode text: no node, script or response could carry it on.
        raise InvalidInput(
            "input holds a lone surrogate (an unpaired \\ud800-\\udfff escape)", field="input"
        )
    if size > max_bytes:
        raise InvalidInput(
            f"input is {size} bytes, the limit is {max_bytes}", field="input", limit=max_bytes
        )
