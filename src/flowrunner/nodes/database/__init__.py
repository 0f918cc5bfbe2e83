"""Database nodes: ``postgres`` and ``dynamodb``, each talking to a database the flow names
(a DSN or endpoint from params and secrets), unlike ``store``, which uses Flowrunner's own."""

from __future__ import annotations

from flowrunner.nodes.base import DefinedNodeType
from flowrunner.nodes.database.dynamodb import DYNAMODB
from flowrunner.nodes.database.postgres import POSTGRES

DATABASE_TYPES: list[tuple[DefinedNodeType, tuple[str, ...]]] = [(POSTGRES, ()), (DYNAMODB, ())]
