"""Checkpoints that hold each big value once: by reference to the run input, or to one copy.

A run's checkpoint is rewritten after every node with its shared state and every finished
node's output. A flow that passes a large payload along (each node returns its input, shared
starts as a copy of the input) used to store that payload once per finished node in every
checkpoint, and write all of those copies again at each node: ten nodes of a 900 KB input
wrote ~50 MB per run.

Here a value whose JSON text is at least ``INLINE_BYTES`` long is replaced by a reference
``{"$ref": <digest>}`` to one copy kept under ``results["$values"][<digest>]``, or by
``{"$ref": "input"}`` when it equals the run input, which the execution row holds already.
``unpack`` gives the runner the values back (each reference its own copy, so a node changing
one cannot change another). A value that itself looks like a reference is always stored
under ``$values``, never in place, so user data is never mistaken for one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from flowrunner import jsontext
from flowrunner.storage import Checkpoint

REF = "$ref"
VALUES = "$values"
INPUT = "input"
INLINE_BYTES = 512
"""Values shorter than this (as JSON text) are stored in place: a reference would not pay."""


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def _text(value: Any) -> str:
    return jsontext.dumps(value, default=str)  # as payloads.to_json: non-JSON values as text


class Packer:
    """Packs one run's checkpoints; knows the digest of that run's input."""

    def __init__(self, run_input: Any) -> None:
        self._input = run_input
        self._input_digest: str | None = None

    def pack(self, shared: Any, results: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
        """JSON-safe, detached ``shared`` and ``results`` with big values referenced."""
        values: dict[str, Any] = {}
        packed = {key: self._ref(value, values) for key, value in results.items()}
        packed_shared = self._ref(shared, values)
        if values:
            packed[VALUES] = values
        return packed_shared, packed

    def _ref(self, value: Any, values: dict[str, Any]) -> Any:
        text = _text(value)
        looks_like_ref = isinstance(value, Mapping) and REF in value
        if len(text) < INLINE_BYTES and not looks_like_ref:
            return jsontext.loads(text)
        digest = _digest(text)
        if digest == self._digest_of_input():
            return {REF: INPUT}
        if digest not in values:
            values[digest] = jsontext.loads(text)
        return {REF: digest}

    def _digest_of_input(self) -> str:
        if self._input_digest is None:
            self._input_digest = _digest(_text(self._input))
        return self._input_digest


def unpack(checkpoint: Checkpoint, run_input: Any) -> Checkpoint:
    """``checkpoint`` with every reference replaced by a copy of its value."""
    results = dict(checkpoint.results)
    stored = results.pop(VALUES, None)
    values: Mapping[str, Any] = stored if isinstance(stored, Mapping) else {}

    def value_of(item: Any) -> Any:
        if isinstance(item, Mapping) and len(item) == 1 and isinstance(item.get(REF), str):
            target = item[REF]
            if target == INPUT:
                return jsontext.copy(run_input, default=str)
            if target in values:
                return jsontext.copy(values[target])
        return item

    return replace(
        checkpoint,
        shared=value_of(checkpoint.shared),
        results={key: value_of(value) for key, value in results.items()},
    )


def is_node_result(key: str) -> bool:
    """Whether a checkpoint ``results`` key is a node's output (not ``$resume``/``$values``)."""
    return not key.startswith("$")
