"""The API's few-second memory of token → account resolutions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from flowrunner.api.token_cache import TokenCache
from flowrunner.errors import Unauthenticated
from flowrunner.storage import Account

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ALICE = Account("a1", "alice", "x", is_admin=False, disabled=False, created_at=NOW, updated_at=NOW)


class Resolver:
    """Counts how often the cache falls through to the real authentication."""

    def __init__(self) -> None:
        self.calls = 0
        self.valid = {"frt_good": ALICE}

    async def __call__(self, token: str) -> Account:
        self.calls += 1
        if token not in self.valid:
            raise Unauthenticated("invalid token")
        return self.valid[token]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_token_seen_within_the_ttl_is_not_resolved_again() -> None:
    resolver, clock = Resolver(), Clock()
    cache = TokenCache(5.0, clock=clock)
    assert await cache.resolve("frt_good", resolver) is ALICE
    clock.now += 4.9
    assert await cache.resolve("frt_good", resolver) is ALICE
    assert resolver.calls == 1


async def test_a_token_is_resolved_again_once_the_ttl_passed() -> None:
    resolver, clock = Resolver(), Clock()
    cache = TokenCache(5.0, clock=clock)
    await cache.resolve("frt_good", resolver)
    clock.now += 5.0
    del resolver.valid["frt_good"]  # revoked elsewhere meanwhile
    with pytest.raises(Unauthenticated):
        await cache.resolve("frt_good", resolver)
    assert resolver.calls == 2


async def test_a_failed_resolution_is_never_remembered() -> None:
    resolver = Resolver()
    cache = TokenCache(5.0)
    for _ in range(2):
        with pytest.raises(Unauthenticated):
            await cache.resolve("frt_bad", resolver)
    assert resolver.calls == 2
    assert len(cache) == 0


async def test_clear_forgets_every_resolution() -> None:
    resolver = Resolver()
    cache = TokenCache(5.0)
    await cache.resolve("frt_good", resolver)
    cache.clear()
    await cache.resolve("frt_good", resolver)
    assert resolver.calls == 2


async def test_a_zero_ttl_disables_the_cache() -> None:
    resolver = Resolver()
    cache = TokenCache(0.0)
    await cache.resolve("frt_good", resolver)
    await cache.resolve("frt_good", resolver)
    assert resolver.calls == 2


async def test_beyond_the_bound_the_least_recently_used_resolution_goes_first() -> None:
    resolver = Resolver()
    resolver.valid.update({"frt_two": ALICE, "frt_three": ALICE})
    cache = TokenCache(5.0, max_entries=2)
    for token in ["frt_good", "frt_two", "frt_good", "frt_three"]:
        await cache.resolve(token, resolver)
    assert (len(cache), resolver.calls) == (2, 3)
    await cache.resolve("frt_good", resolver)  # kept: used after frt_two
    assert resolver.calls == 3
    await cache.resolve("frt_two", resolver)  # gone
    assert resolver.calls == 4
