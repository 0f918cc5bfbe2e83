"""API token format: ``frt_`` + 32 random bytes (urlsafe base64), stored as a sha256 hash.

The prefix makes leaked tokens recognisable to secret scanners and lets authentication reject
foreign strings without a database lookup. Tokens carry 256 bits of entropy, so a fast hash
(sha256) is enough: there is nothing to brute-force, unlike passwords. A short display prefix
(``frt_`` + 6 chars) is stored so owners can tell their tokens apart in listings.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from flowrunner.storage.records import Account, ApiToken

TOKEN_PREFIX = "frt_"
DISPLAY_PREFIX_LENGTH = len(TOKEN_PREFIX) + 6


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A freshly created token: ``token`` is the raw secret, shown to its owner once."""

    token: str
    record: ApiToken
    account: Account


def generate_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def display_prefix(raw: str) -> str:
    return raw[:DISPLAY_PREFIX_LENGTH]


def looks_like_token(raw: str) -> bool:
    # 32 bytes -> 43 urlsafe base64 chars; anything else was never issued by us.
    return raw.startswith(TOKEN_PREFIX) and len(raw) == len(TOKEN_PREFIX) + 43
