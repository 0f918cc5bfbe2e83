"""Password hashing with argon2id, off the event loop.

argon2 is deliberately slow (tens of ms of CPU and 64 MiB of memory per hash with the library
defaults), so every hash and verify runs in a worker thread: the event loop keeps serving
other requests while one login is being checked.
"""

from __future__ import annotations

import asyncio

from argon2 import DEFAULT_MEMORY_COST, DEFAULT_TIME_COST, Type
from argon2 import PasswordHasher as _Argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from flowrunner.errors import InvalidInput

# argon2id of "flowrunner-timing-equalizer" with the library's default parameters.
_DUMMY = (
    "$argon2id$v=19$m=65536,t=3,p=4$vm1FCeuMPJuJ3U0w3F3QDg$"
    "cA3LDp8I7LqQZAdmnepr5698ltRPUKVekU96IUr/EjU"
)
MIN_PASSWORD_LENGTH = 8
# argon2 accepts any length, but hashing megabytes per attempt is a cheap denial of service.
MAX_PASSWORD_LENGTH = 1024


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(f"password must have at most {MAX_PASSWORD_LENGTH} characters")


class PasswordHasher:
    """argon2id hashes; ``verify`` also says when a stored hash uses outdated parameters."""

    def __init__(self, *, time_cost: int | None = None, memory_cost: int | None = None) -> None:
        # Defaults are the library's (RFC 9106 low-memory profile); tests pass cheap ones.
        self._argon2 = _Argon2(
            time_cost=time_cost or DEFAULT_TIME_COST,
            memory_cost=memory_cost or DEFAULT_MEMORY_COST,
            type=Type.ID,
        )
        # A real hash to verify against when the username does not exist, so an unknown
        # user costs the same time as a wrong password (no username probing by timing).
        # Not hashed here: a hash is ~0.2 s of CPU that every server start (and every CLI
        # admin command) paid before answering anything. With the default parameters it is
        # a stored one (verifying costs what the parameters in it say, whatever the
        # password); with others it is made on first use.
        self._dummy = None if self._argon2.check_needs_rehash(_DUMMY) else _DUMMY

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._argon2.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        return await asyncio.to_thread(self._verify, password_hash, password)

    async def burn(self, password: str) -> None:
        """Spend the time of a verification (for unknown usernames)."""
        await asyncio.to_thread(self._burn, password)

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self._argon2.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

    def _burn(self, password: str) -> None:
        if self._dummy is None:
            # Two threads may both make one: the same work, either is as good.
            self._dummy = self._argon2.hash("flowrunner-timing-equalizer")
        self._verify(self._dummy, password)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._argon2.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
