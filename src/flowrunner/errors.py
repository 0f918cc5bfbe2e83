"""The exception tree every Flowrunner package raises from.

One root, a few families a caller can catch, leaves that carry context::

    FlowrunnerError
    ├── DefinitionError            a flow's YAML is invalid (carries every Problem found)
    │   └── FlowTooLarge           its text is over the flow size limit (HTTP 413)
    ├── ExpressionError            a ${...} expression could not be parsed or evaluated
    ├── ExecutionError             a run could not finish
    │   ├── NodeFailed             a node raised and had no error edge
    │   ├── NodeTimeout            a node exceeded its timeout
    │   ├── StepLimitExceeded      a run visited more nodes than its step limit
    │   ├── SizeLimitExceeded      a node's output, the shared state or a checkpoint is too big
    │   ├── ResumeLimitExceeded    a run kept crashing: resumed too often without progress
    │   ├── FlowFailed             a `fail` node ended the run on purpose
    │   └── WaitTimedOut           a `wait_for` timed out and has no `timeout` edge
    ├── SandboxError               JavaScript could not run or failed inside the sandbox
    │   ├── ScriptError            the script threw or has a syntax error (JS line:column)
    │   ├── ScriptTimeout          wall-time limit reached
    │   └── ScriptResourceError    memory or result-size limit reached, or the worker died
    ├── StorageError               a store operation failed
    │   ├── NotFound
    │   ├── Conflict
    │   └── StorageUnavailable
    ├── AuthError
    │   ├── Unauthenticated
    │   ├── Forbidden
    │   └── RateLimited           too many failed logins; carries ``retry_after`` seconds
    ├── InvalidInput               a request value breaks a rule (password length, key name...)
    │   └── InvalidPayload         a signal's payload fails its wait's JSON Schema (HTTP 422)
    ├── LinkExpired                a resume link was used, or its wait is over (HTTP 410)
    ├── VaultError                 secrets cannot be encrypted/decrypted (missing or wrong key)
    ├── WebhookError
    ├── PluginError                a node type could not be loaded or registered
    └── DestinationRefused         an outbound URL is not http(s) or reaches a private address

Foreign exceptions (driver, V8, YAML) are translated at the boundary where they occur with
``raise ... from exc``; nothing above a package sees them. The API and the CLI map this tree
to status codes and exit codes in one place each, using ``code`` and ``exit_code``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal


class FlowrunnerError(Exception):
    """Root of every error Flowrunner raises on purpose."""

    code: str = "internal_error"
    exit_code: int = 1
    # Keys of ``context`` a run's stored error shows as its ``details`` (masked, bounded):
    # what a user needs to act on the failure, e.g. an agent's conversation so far.
    public_context: tuple[str, ...] = ()

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context: dict[str, Any] = {k: v for k, v in context.items() if v is not None}

    def __str__(self) -> str:
        return self.message


# --- definitions -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong (or suspicious) in a flow definition, with where it is."""

    path: str
    message: str
    line: int | None = None
    column: int | None = None
    severity: Literal["error", "warning"] = "error"
    hint: str | None = None
    source: str | None = field(default=None, compare=False)

    @property
    def location(self) -> str:
        if self.line is None:
            return "?"
        return f"{self.line}:{self.column or 1}"

    def __str__(self) -> str:
        where = f"{self.source}:" if self.source else ""
        text = f"{where}{self.location}: {self.severity}: {self.path}: {self.message}"
        return f"{text} ({self.hint})" if self.hint else text

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": self.path,
            "message": self.message,
            "line": self.line,
            "column": self.column,
            "severity": self.severity,
        }
        if self.hint:
            out["hint"] = self.hint
        return out


class DefinitionError(FlowrunnerError):
    """A flow definition is invalid; ``problems`` lists every error and warning found."""

    code = "invalid_flow"
    exit_code = 1

    def __init__(self, problems: Sequence[Problem], source: str | None = None) -> None:
        self.problems = list(problems)
        errors = [p for p in self.problems if p.severity == "error"]
        first = str(errors[0]) if errors else "invalid flow"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"{first}{more}", source=source)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]


class FlowTooLarge(DefinitionError):
    """The flow's text is over the size limit; refused before it is parsed at all."""

    code = "payload_too_large"

    def __init__(self, size: int, limit: int, source: str | None = None) -> None:
        super().__init__(
            [
                Problem(
                    "(document)",
                    f"the flow is {size} bytes, over the limit of {limit} bytes",
                    hint="split it into sub-flows, or raise FLOWRUNNER_MAX_FLOW_BYTES",
                )
            ],
            source=source,
        )
        self.size = size
        self.limit = limit


class ExpressionError(FlowrunnerError):
    """A ``${...}`` expression failed; names the node, the param and the expression."""

    code = "expression_error"


# --- execution ---------------------------------------------------------------------------


class ExecutionError(FlowrunnerError):
    """A run could not finish."""

    code = "execution_failed"


class NodeFailed(ExecutionError):
    """A node raised and had no ``error`` edge to follow."""

    code = "node_failed"

    def __init__(self, node_id: str, cause: BaseException, *, data: Any = None) -> None:
        super().__init__(f"node '{node_id}' failed: {cause}", node_id=node_id)
        self.node_id = node_id
        self.cause = cause
        self.data = data


class NodeTimeout(ExecutionError):
    code = "node_timeout"

    def __init__(self, node_id: str, seconds: float) -> None:
        super().__init__(f"node '{node_id}' timed out after {seconds:g}s", node_id=node_id)
        self.node_id = node_id
        self.seconds = seconds


class StepLimitExceeded(ExecutionError):
    code = "step_limit_exceeded"

    def __init__(self, limit: int, node_id: str | None = None) -> None:
        super().__init__(
            f"run exceeded its step limit of {limit} node visits"
            + (f" (at node '{node_id}')" if node_id else "")
            + "; a loop in the flow probably never ends",
            node_id=node_id,
        )
        self.limit = limit
        self.node_id = node_id


class SizeLimitExceeded(ExecutionError):
    """A run's data grew past a size limit (measured as serialized JSON, in bytes).

    ``what`` names the limited thing ("output of node 'x'", "shared state after node 'x'"...)
    and ``setting`` the ``FLOWRUNNER_*`` variable that sets it. ``size`` is how far the
    measure got before it stopped: at least that much, perhaps more (it stops at the limit).
    """

    code = "size_limit_exceeded"

    def __init__(
        self, what: str, *, limit: int, size: int, setting: str, node_id: str | None = None
    ) -> None:
        super().__init__(
            f"{what} is over the limit of {limit} bytes (at least {size} bytes as "
            f"JSON); the limit is {setting}",
            node_id=node_id,
        )
        self.what = what
        self.limit = limit
        self.size = size
        self.setting = setting
        self.node_id = node_id


class ResumeLimitExceeded(ExecutionError):
    """Crash recovery took the run over more than the allowed number of times without it
    saving a checkpoint in between: resuming it again would only repeat the crash (and the
    side effects of the node it re-runs)."""

    code = "resume_limit_exceeded"

    def __init__(self, attempts: int, limit: int, last_error: str | None = None) -> None:
        super().__init__(
            f"run was resumed {attempts - 1} times without progress (limit {limit});"
            " it is failed instead of resumed again"
            + (f". Last crash: {last_error}" if last_error else ""),
            attempts=attempts,
            limit=limit,
        )


class FlowFailed(ExecutionError):
    """A ``fail`` node (or a script) ended the run as failed on purpose."""

    code = "flow_failed"


class WaitTimedOut(ExecutionError):
    """A ``wait_for`` node's timeout passed without its signal, and it has no ``timeout`` edge."""

    code = "wait_timed_out"


# --- sandbox -----------------------------------------------------------------------------


class SandboxError(FlowrunnerError):
    code = "sandbox_error"


class ScriptError(SandboxError):
    """The script threw or does not parse; ``line``/``column`` are inside the script."""

    code = "script_error"

    def __init__(
        self, message: str, *, line: int | None = None, column: int | None = None, **context: Any
    ) -> None:
        super().__init__(message, line=line, column=column, **context)
        self.line = line
        self.column = column


class ScriptTimeout(SandboxError):
    code = "script_timeout"


class ScriptResourceError(SandboxError):
    code = "script_resource_limit"


# --- storage -----------------------------------------------------------------------------


class StorageError(FlowrunnerError):
    code = "storage_error"


class NotFound(StorageError):
    code = "not_found"


class Conflict(StorageError):
    code = "conflict"


class StorageUnavailable(StorageError):
    code = "storage_unavailable"


# --- auth, webhooks, plugins -------------------------------------------------------------


class AuthError(FlowrunnerError):
    code = "auth_error"


class Unauthenticated(AuthError):
    code = "unauthenticated"


class Forbidden(AuthError):
    code = "forbidden"


class RateLimited(AuthError):
    """Too many failed attempts; retry after ``retry_after`` seconds (HTTP 429 Retry-After)."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, **context: Any) -> None:
        super().__init__(message, retry_after=retry_after, **context)
        self.retry_after = retry_after


class InvalidInput(FlowrunnerError):
    """A value a caller supplied breaks a rule of the service (HTTP 400)."""

    code = "invalid_input"


class InvalidPayload(InvalidInput):
    """A signal's payload does not match the JSON Schema its wait declared."""

    code = "invalid_payload"

    def __init__(self, message: str, problems: Sequence[Any] = (), **context: Any) -> None:
        super().__init__(message, **context)
        self.problems = list(problems)


class LinkExpired(FlowrunnerError):
    """A resume link whose wait is over: used already, timed out, or the run moved on."""

    code = "link_expired"


class VaultError(FlowrunnerError):
    """The keyring cannot decrypt stored secrets (a key is missing) or is misconfigured."""

    code = "vault_error"


class WebhookError(FlowrunnerError):
    code = "webhook_error"


class PluginError(FlowrunnerError):
    code = "plugin_error"


class DestinationRefused(FlowrunnerError):
    """An outbound request (a node, a webhook) would reach what the SSRF policy refuses:
    a scheme other than http(s), or a loopback, private, link-local... address. Carries the
    ``host``, the resolved ``address`` and the ``reason``."""

    code = "destination_refused"
