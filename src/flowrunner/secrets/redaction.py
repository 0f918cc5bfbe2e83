"""Credentials in URLs, redacted before a line is logged.

Browsers cannot set headers on a WebSocket, so API tokens travel as ``?token=`` and the access
log would print them; webhook and database URLs carry ``user:password@``. Every logged line
passes through ``redact_credentials``: the value of a query parameter whose name says it is a
credential, and the password (or a lone token) of a URL's userinfo, become ``***``.
"""

from __future__ import annotations

import re

from flowrunner.secrets.masking import MASK

# Parameter names that carry a credential: exact names and common spellings.
_CREDENTIAL_NAMES = (
    r"(?:access_|refresh_|id_|auth_|api_|session_|bearer_)?token|"
    r"password|passwd|pwd|pass|secret|client_secret|api[_-]?key|apikey|access[_-]?key|"
    r"private[_-]?key|key|auth|authorization|credentials?|signature|sig|session(?:id)?|"
    r"x-amz-signature|x-amz-credential|x-amz-security-token"
)
_QUERY = re.compile(
    rf"(?P<lead>[?&;](?:{_CREDENTIAL_NAMES})=)(?P<value>[^&;#\s\"'<>]+)", re.IGNORECASE
)
# scheme://user:password@host or scheme://token@host (the userinfo is the credential).
_USERINFO = re.compile(
    r"(?P<scheme>\b[a-z][a-z0-9+.-]*://)(?P<user>[^/\s@:\"'<>]*)(?P<password>:[^/\s@\"'<>]*)?@",
    re.IGNORECASE,
)


def redact_credentials(text: str) -> str:
    """``text`` with credential query values and URL userinfo passwords replaced by ``***``."""
    if "=" in text:
        text = _QUERY.sub(lambda m: m.group("lead") + MASK, text)
    if "@" in text:
        text = _USERINFO.sub(_userinfo, text)
    return text


def _userinfo(match: re.Match[str]) -> str:
    if match.group("password") is not None:
        return f"{match.group('scheme')}{match.group('user')}:{MASK}@"
    return f"{match.group('scheme')}{MASK}@"
