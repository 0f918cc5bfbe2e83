from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from flowrunner.accounts import AccountService, LoginLimiter, PasswordHasher, VerifiedCache
from flowrunner.audit import AuditLog
from flowrunner.storage import Account, Store
from tests.accounts.conftest import ManualClock, Ticker

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ALICE = Account("a1", "alice", "$argon2id$hash-1", False, False, T0, T0)


def test_a_verified_password_is_remembered_until_the_ttl(ticker: Ticker) -> None:
    cache = VerifiedCache(ttl=60, clock=ticker)
    assert not cache.hit(ALICE, "pw")
    cache.add(ALICE, "pw")
    assert cache.hit(ALICE, "pw")
    assert not cache.hit(ALICE, "other")
    ticker.now += 60
    assert not cache.hit(ALICE, "pw")


def test_a_changed_password_hash_misses_at_once(ticker: Ticker) -> None:
    cache = VerifiedCache(ttl=60, clock=ticker)
    cache.add(ALICE, "pw")
    assert not cache.hit(replace(ALICE, password_hash="$argon2id$hash-2"), "pw")
    assert not cache.hit(replace(ALICE, id="a2"), "pw")


def test_the_oldest_entries_go_first_beyond_the_bound(ticker: Ticker) -> None:
    cache = VerifiedCache(ttl=60, max_entries=2, clock=ticker)
    for password in ["p1", "p2", "p3"]:
        cache.add(ALICE, password)
    assert [cache.hit(ALICE, p) for p in ["p1", "p2", "p3"]] == [False, True, True]


def test_a_zero_ttl_disables_the_cache(ticker: Ticker) -> None:
    cache = VerifiedCache(ttl=0, clock=ticker)
    cache.add(ALICE, "pw")
    assert not cache.hit(ALICE, "pw")


class CountingHasher(PasswordHasher):
    """A real argon2 hasher that counts verifications."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024)
        self.verifications = 0

    async def verify(self, password_hash: str, password: str) -> bool:
        self.verifications += 1
        return await super().verify(password_hash, password)


async def test_repeated_basic_authentication_verifies_argon2_once(
    store: Store, audit: AuditLog, limiter: LoginLimiter, clock: ManualClock, ticker: Ticker
) -> None:
    hasher = CountingHasher()
    service = AccountService(
        store, audit, limiter, hasher=hasher, clock=clock,
        verified=VerifiedCache(ttl=60, clock=ticker),
    )  # fmt: skip
    await service.create_account("alice", "pass-word-1")
    for _ in range(5):
        await service.authenticate_password("alice", "pass-word-1", client="c")
    assert hasher.verifications == 1
    ticker.now += 61
    await service.authenticate_password("alice", "pass-word-1", client="c")
    assert hasher.verifications == 2
