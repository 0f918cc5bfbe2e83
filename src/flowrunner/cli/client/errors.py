"""Errors of the client commands, each carrying the exit code a script can test.

- 1: the operation (or the run) failed — the server refused it, or could not be reached;
- 2: a usage error: the command line or a local file is wrong, nothing was sent;
- 3: not found, or not allowed: no or a bad token, another account's object, admin only.
"""

from __future__ import annotations

from flowrunner.errors import FlowrunnerError

FAILED = 1
USAGE = 2
NOT_FOUND_OR_AUTH = 3


class ClientError(FlowrunnerError):
    """Something the CLI reports in one line; ``exit_code`` says what kind of failure."""

    code = "client_error"

    def __init__(
        self,
        message: str,
        *,
        exit_code: int = FAILED,
        status: int | None = None,
        error_code: str | None = None,
        correlation_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.status = status
        self.error_code = error_code
        self.correlation_id = correlation_id

    def __str__(self) -> str:
        if self.correlation_id:
            return f"{self.message} (correlation id {self.correlation_id})"
        return self.message


class UsageProblem(ClientError):
    """The command line, the profiles file or a local input file is wrong (exit 2)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, exit_code=USAGE)


class NotLoggedIn(ClientError):
    def __init__(self, message: str) -> None:
        super().__init__(message, exit_code=NOT_FOUND_OR_AUTH)
