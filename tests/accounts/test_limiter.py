from __future__ import annotations

import pytest

from flowrunner.accounts import LoginLimiter
from flowrunner.errors import RateLimited
from tests.accounts.conftest import Ticker


def test_limits_a_username_from_one_client_after_max_failures(limiter: LoginLimiter) -> None:
    for _ in range(3):
        limiter.check("alice", "10.0.0.1")
        limiter.failed("alice", "10.0.0.1")
    with pytest.raises(RateLimited) as caught:
        limiter.check("alice", "10.0.0.1")
    assert caught.value.retry_after == 60
    assert caught.value.code == "rate_limited"


def test_failures_from_another_client_do_not_block_the_owner(limiter: LoginLimiter) -> None:
    for _ in range(3):
        limiter.failed("alice", "attacker")
    limiter.check("alice", "owner")  # no exception


def test_one_client_spraying_usernames_is_limited_per_client(limiter: LoginLimiter) -> None:
    for name in ["a1", "a2", "a3", "a4", "a5"]:
        limiter.failed(name, "sprayer")
    with pytest.raises(RateLimited):
        limiter.check("a6", "sprayer")
    limiter.check("a6", "someone-else")


def test_retry_after_counts_down_and_the_window_expires(
    limiter: LoginLimiter, ticker: Ticker
) -> None:
    for _ in range(3):
        limiter.failed("alice", "c")
    ticker.now += 45
    with pytest.raises(RateLimited) as caught:
        limiter.check("alice", "c")
    assert caught.value.retry_after == 15
    ticker.now += 15
    limiter.check("alice", "c")


def test_success_resets_the_pair_but_not_the_client_budget(limiter: LoginLimiter) -> None:
    for _ in range(2):
        limiter.failed("alice", "c")
    limiter.succeeded("alice", "c")
    for _ in range(2):
        limiter.failed("alice", "c")
    limiter.check("alice", "c")  # 2 < 3 since the reset
    limiter.failed("bob", "c")
    with pytest.raises(RateLimited):
        limiter.check("carol", "c")  # the client has 5 failures in the window


def test_usernames_differing_in_case_share_a_budget(limiter: LoginLimiter) -> None:
    for name in ["Alice", "ALICE", "alice"]:
        limiter.failed(name, "c")
    with pytest.raises(RateLimited):
        limiter.check("aLiCe", "c")
