"""Run-scoped values: what whoever starts a run hands to its nodes, beside the flow's data.

Some things a node needs are neither in the flow file nor in the run's data: the run's
secrets, a host that runs flows stored on the server, the account's key-value store. Only
the caller of a run has them, and they differ from run to run. A node type declares a typed
key for such a value once, beside the node type::

    STORED_FLOWS = RunScoped[StoredFlows | None]("stored_flows", None)

reads it during a visit with ``ctx.scoped(STORED_FLOWS)`` (the key's default when the run
was given none), and the caller of the run provides it::

    await flow.run(input, scoped={STORED_FLOWS: host})

The values travel on the run's ``Context`` only: never in ``shared``, ``results``,
checkpoints or events, so a secret (or a connection) is never stored or shown. Sub-flows,
batch items and fan-out branches see the values of the run they belong to. Keys compare by
identity, so two node families can both name a key "store" without meeting.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, TypeVar

__all__ = ["RunScoped", "ScopedValues"]

T = TypeVar("T")


class RunScoped(Generic[T]):
    """The key of one run-scoped value of type ``T``; ``default`` when a run has none."""

    __slots__ = ("default", "name")

    def __init__(self, name: str, default: T) -> None:
        self.name = name  # for messages and repr only: the key is the object itself
        self.default = default

    def __repr__(self) -> str:
        return f"RunScoped({self.name!r})"


ScopedValues = Mapping[RunScoped[Any], Any]
"""The run-scoped values of one run: key → value (each value of its key's type)."""
