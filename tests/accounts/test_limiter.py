from __future__ import annotations

import pytest

from flowrunner.accounts import LoginLimiter
from flowrunner.errors import RateLimited
from tests.accounts.conftest import Ticker


def fail(limiter: LoginLimiter, username: str, client: str, times: int = 1) -> None:
    for _ in range(times):
        limiter.attempt(username, client)  # never followed by succeeded(): a failure


def test_limits_a_username_from_one_client_after_max_failures(limiter: LoginLimiter) -> None:
    fail(limiter, "alice", "10.0.0.1", 3)
    with pytest.raises(RateLimited) as caught:
        limiter.attempt("alice", "10.0.0.1")
    assert caught.value.retry_after == 60
    assert caught.value.code == "rate_limited"


def test_attempts_in_flight_count_before_their_outcome_is_known(limiter: LoginLimiter) -> None:
    # Three parallel requests started, none finished yet: a fourth must already wait.
    started = [limiter.attempt("alice", "c") for _ in range(3)]
    with pytest.raises(RateLimited):
        limiter.attempt("alice", "c")
    limiter.succeeded(started[0])
    limiter.attempt("alice", "c")


def test_failures_from_another_client_do_not_block_the_owner(limiter: LoginLimiter) -> None:
    fail(limiter, "alice", "attacker", 3)
    limiter.attempt("alice", "owner")


def test_one_client_spraying_usernames_is_limited_per_client(limiter: LoginLimiter) -> None:
    for name in ["a1", "a2", "a3", "a4", "a5"]:
        fail(limiter, name, "sprayer")
    with pytest.raises(RateLimited):
        limiter.attempt("a6", "sprayer")
    limiter.attempt("a6", "someone-else")


def test_retry_after_counts_down_and_the_window_expires(
    limiter: LoginLimiter, ticker: Ticker
) -> None:
    fail(limiter, "alice", "c", 3)
    ticker.now += 45
    with pytest.raises(RateLimited) as caught:
        limiter.attempt("alice", "c")
    assert caught.value.retry_after == 15
    ticker.now += 15
    limiter.attempt("alice", "c")


def test_refused_attempts_are_not_counted(limiter: LoginLimiter, ticker: Ticker) -> None:
    fail(limiter, "alice", "c", 3)
    for _ in range(10):
        with pytest.raises(RateLimited):
            limiter.attempt("alice", "c")
    ticker.now += 60
    limiter.attempt("alice", "c")


def test_success_resets_the_pair_but_not_the_client_budget(
    limiter: LoginLimiter, ticker: Ticker
) -> None:
    fail(limiter, "alice", "c", 2)
    ticker.now += 1
    limiter.succeeded(limiter.attempt("alice", "c"))
    fail(limiter, "alice", "c", 2)
    limiter.attempt("alice", "c")  # 3rd since the reset: allowed; 5 client failures now
    with pytest.raises(RateLimited):
        limiter.attempt("carol", "c")


def test_usernames_differing_in_case_share_a_budget(limiter: LoginLimiter) -> None:
    for name in ["Alice", "ALICE", "alice"]:
        fail(limiter, name, "c")
    with pytest.raises(RateLimited):
        limiter.attempt("aLiCe", "c")
