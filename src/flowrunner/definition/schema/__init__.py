"""The JSON Schema of the flow format, shipped as ``flow.schema.json`` in this package."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any


@cache
def _schema_text() -> str:
    return files(__package__).joinpath("flow.schema.json").read_text(encoding="utf-8")


def flow_schema() -> dict[str, Any]:
    """A fresh copy of the flow JSON Schema (draft 2020-12); callers may mutate it."""
    schema: dict[str, Any] = json.loads(_schema_text())
    return schema
