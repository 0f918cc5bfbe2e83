"""Checkpoints that hold each big value once: by reference to the run input, or to one copy.

A run's checkpoint is rewritten after every node with its shared state and every finished
node's output. A flow that passes a large payload along (each node returns its input, shared
starts as a copy of the input) used to store that payload once per finished node in every
checkpoint, and write all of those copies again at each node: ten nodes of a 900 KB input
wrote ~50 MB per run.

Here a value whose JSON text is at least ``INLINE_BYTES`` long is replaced by a reference
``{"$ref": <digest>}`` to one copy kept under ``results["$values"][<digest>]``, or by
``{"$ref": "input"}`` (or ``{"$ref": "input", "key": k}`` for one of its values) when it
equals the run input, which the execution row holds already. An object that is not known as
a whole is looked into (``{"$dict": {...}}``, two levels deep), so the shared state — the
input plus a few keys — costs only its new keys. ``unpack`` gives the runner the values back
(each reference its own copy, so a node changing one cannot change another). User data
shaped like a marker is always stored under ``$values``, which is never interpreted, so it
is never mistaken for one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from flowrunner import jsontext
from flowrunner.executions.sealing import is_sealed
from flowrunner.storage import Checkpoint

REF = "$ref"
KEY = "key"
DICT = "$dict"
VALUES = "$values"
INPUT = "input"
INLINE_BYTES = 512
"""Values shorter than this (as JSON text) are stored in place: a reference would not pay."""
DEPTH = 2
"""How deep into objects big values are looked for: ``shared`` (depth 0) is usually the input
plus a few keys, and each of its keys (depth 1) often a value of the input."""


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def _text(value: Any) -> str:
    return jsontext.dumps(value, default=str)  # as payloads.to_json: non-JSON values as text


def _is_marker(value: Any) -> bool:
    """A mapping ``unpack`` would interpret: user data of that shape is never stored in place."""
    return isinstance(value, Mapping) and (REF in value or DICT in value)


class Packer:
    """Packs one run's checkpoints; knows the digests of that run's input and its values."""

    def __init__(self, run_input: Any) -> None:
        self._input = run_input
        self._known: dict[str, dict[str, Any]] | None = None
        # id of a result copy -> (that copy, its packed form, the values it added), from the
        # last checkpoint: the recorder hands the same copy of an unchanged output to every
        # checkpoint, which then costs no second encoding.
        self._packed: dict[int, tuple[Any, Any, dict[str, Any]]] = {}

    def pack(self, shared: Any, results: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
        """``shared`` and ``results`` with big values referenced. They must be JSON-safe,
        detached copies (``payloads.to_json``) that are never changed afterwards: values are
        kept, not copied again, and a result passed again (the same object) is packed as it
        was. Reserved keys (``$values``) and sealed parts (encrypted: they hold a secret) stay
        as they are."""
        values: dict[str, Any] = {}
        last, self._packed = self._packed, {}
        packed = {
            key: self._result(value, values, last) if is_node_result(key) else value
            for key, value in results.items()
        }
        packed_shared = self._ref(shared, values, 0)
        if values:
            packed[VALUES] = values
        return packed_shared, packed

    def _result(
        self, value: Any, values: dict[str, Any], last: dict[int, tuple[Any, Any, dict[str, Any]]]
    ) -> Any:
        hit = last.get(id(value))
        if hit is None or hit[0] is not value:
            added: dict[str, Any] = {}
            hit = (value, self._ref(value, added, 1), added)
        self._packed[id(value)] = hit  # kept for the next checkpoint only: bounded
        for digest, member in hit[2].items():
            values.setdefault(digest, member)
        return hit[1]

    def _ref(self, value: Any, values: dict[str, Any], depth: int) -> Any:
        if is_sealed(value):
            return value
        text = _text(value)
        if len(text) < INLINE_BYTES and not _is_marker(value):
            return value
        digest = _digest(text)
        known = self._known_values().get(digest)
        if known is not None:
            return dict(known)
        if depth < DEPTH and isinstance(value, Mapping) and not _is_marker(value):
            # Its big members may be known (shared = the input plus a key or two).
            return {DICT: {str(k): self._ref(v, values, depth + 1) for k, v in value.items()}}
        values.setdefault(digest, value)
        return {REF: digest}

    def _known_values(self) -> dict[str, dict[str, Any]]:
        """Digest -> reference, for the input and each of its big top-level values."""
        if self._known is None:
            self._known = {_digest(_text(self._input)): {REF: INPUT}}
            if isinstance(self._input, Mapping):
                for key, member in self._input.items():
                    text = _text(member)
                    if len(text) >= INLINE_BYTES:
                        self._known.setdefault(_digest(text), {REF: INPUT, KEY: str(key)})
        return self._known


def unpack(checkpoint: Checkpoint, run_input: Any) -> Checkpoint:
    """``checkpoint`` with every reference replaced by a copy of its value."""
    results = dict(checkpoint.results)
    stored = results.pop(VALUES, None)
    values: Mapping[str, Any] = stored if isinstance(stored, Mapping) else {}

    def value_of(item: Any) -> Any:
        if not isinstance(item, Mapping):
            return item
        target = item.get(REF)
        if target == INPUT and set(item) <= {REF, KEY}:
            if KEY not in item:
                return jsontext.copy(run_input, default=str)
            if isinstance(run_input, Mapping) and item[KEY] in run_input:
                return jsontext.copy(run_input[item[KEY]], default=str)
        elif isinstance(target, str) and len(item) == 1 and target in values:
            return jsontext.copy(values[target])
        elif len(item) == 1 and isinstance(item.get(DICT), Mapping):
            return {k: value_of(v) for k, v in item[DICT].items()}
        return item

    return replace(
        checkpoint,
        shared=value_of(checkpoint.shared),
        results={key: value_of(value) for key, value in results.items()},
    )


def is_node_result(key: str) -> bool:
    """Whether a checkpoint ``results`` key is a node's output (not ``$values``)."""
    return not key.startswith("$")
