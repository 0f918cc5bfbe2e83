"""The sandbox seam: what the flow layers ask of a JavaScript host, and what it answers.

``ScriptHost`` is the one Protocol between the code that runs flows (node types, the
compiler, the validator) and the sandbox: evaluate a ``${...}`` expression (or all of a
node's at once), run a function
body (scripts and hooks), check syntax at load time. ``Sandbox`` is the real one; a test can
pass anything of this shape. A flow compiled without a host (``scripts=None``) can use only
plain paths in its expressions and no script nodes or hooks.

``JoiningHost`` is an optional extension: a node's expressions and its prep hook in one
call. A host without it still works; such a node then makes two calls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

__all__ = ["JoinedResult", "JoiningHost", "LogLine", "ScriptHost", "ScriptResult", "SyntaxKind"]

SyntaxKind = Literal["expression", "function"]


@dataclass(frozen=True, slots=True)
class LogLine:
    """One ``console.*`` call made by a script; ``level`` is debug, info, warn or error."""

    level: str
    message: str


@dataclass(frozen=True, slots=True)
class ScriptResult:
    """What a function body returned, the ``shared`` object after it ran, and its logs."""

    value: Any
    shared: dict[str, Any] | None
    logs: list[LogLine] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class JoinedResult:
    """The outcome of expressions and a hook run in one call: each expression's value or
    the ``SandboxError`` it failed with, in order; the hook's ``ScriptResult``, or the
    ``SandboxError`` it failed with (its console lines in ``context["logs"]``), or None when
    it did not run because an expression failed."""

    values: list[Any]
    hook: ScriptResult | Exception | None


class ScriptHost(Protocol):
    """Runs user JavaScript with only the names in ``scope`` visible.

    Failures are the sandbox family of ``flowrunner.errors`` (``ScriptError`` with a line
    and column, ``ScriptTimeout``, ``ScriptResourceError``); a ``SandboxError`` raised by
    ``run_function`` carries the script's console lines in ``context["logs"]``.
    """

    async def evaluate_expression(self, code: str, scope: Mapping[str, Any]) -> Any:
        """The value of one JavaScript expression with ``scope``'s keys as variables."""
        ...

    async def evaluate_expressions(
        self, codes: Sequence[str], scope: Mapping[str, Any]
    ) -> list[Any]:
        """Several expressions over one scope in one call: each one's value, or the
        ``SandboxError`` it failed with, in order (each sees the scope as if alone)."""
        ...

    async def run_function(self, body: str, scope: Mapping[str, Any]) -> ScriptResult:
        """Run a function body: ``return`` gives ``value``, ``shared`` comes back changed."""
        ...

    def check_syntax(self, code: str, *, kind: SyntaxKind) -> None:
        """Raise ``ScriptError`` (with line and column) if ``code`` does not parse; runs
        nothing. Synchronous: validation is."""
        ...


class JoiningHost(ScriptHost, Protocol):
    """A ``ScriptHost`` that can also run a node's expressions and then its prep hook in one
    call (``Sandbox`` does; the node types look for the method and make two calls without it)."""

    async def evaluate_then_run(
        self,
        codes: Sequence[str],
        scope: Mapping[str, Any],
        body: str,
        params: Any,
        slots: Sequence[tuple[Sequence[str | int], int]],
    ) -> JoinedResult:
        """Evaluate ``codes`` over ``scope`` as ``evaluate_expressions`` does; if none failed,
        run ``body`` as ``run_function`` does over ``scope`` with ``params`` replaced by
        ``params`` where, for each ``(path, index)`` of ``slots``, the value at ``path`` is
        that of ``codes[index]`` (as it would come back from ``evaluate_expressions``).

        Raises only when the call fails as a whole (a time limit, a resource limit, a dead
        worker, code that does not compile); the parts' own failures are in the result.
        """
        ...
