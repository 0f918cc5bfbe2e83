"""Accounts, argon2id passwords, hashed API tokens, authentication and brute-force limits."""

from flowrunner.accounts.limiter import LoginLimiter
from flowrunner.accounts.passwords import PasswordHasher
from flowrunner.accounts.service import AccountService
from flowrunner.accounts.tokens import TOKEN_PREFIX, IssuedToken
from flowrunner.accounts.verified import VerifiedCache

__all__ = [
    "TOKEN_PREFIX",
    "AccountService",
    "IssuedToken",
    "LoginLimiter",
    "PasswordHasher",
    "VerifiedCache",
]
