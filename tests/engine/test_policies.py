"""RetryPolicy delays (fixed, exponential, cap, jitter) and BatchPolicy validation."""

from __future__ import annotations

from typing import Any

import pytest

from flowrunner.engine import BatchPolicy, RetryPolicy


def test_default_retry_policy_makes_a_single_attempt() -> None:
    assert RetryPolicy().max_retries == 0


def test_fixed_backoff_waits_the_same_before_every_retry() -> None:
    policy = RetryPolicy(max_retries=3, wait=0.5)
    assert [policy.delay(n) for n in (1, 2, 3)] == [0.5, 0.5, 0.5]


def test_exponential_backoff_doubles_each_time_up_to_max_wait() -> None:
    policy = RetryPolicy(max_retries=5, wait=1.0, backoff="exponential", max_wait=5.0)
    assert [policy.delay(n) for n in (1, 2, 3, 4, 5)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_exponential_backoff_without_cap_survives_huge_attempt_numbers() -> None:
    policy = RetryPolicy(wait=1.0, backoff="exponential")
    assert policy.delay(10_000) == 2.0**64


def test_jitter_only_shortens_the_wait_by_at_most_its_fraction() -> None:
    policy = RetryPolicy(wait=2.0, backoff="exponential", max_wait=3.0, jitter=0.5)
    assert policy.delay(1, rand=lambda: 0.0) == 2.0
    assert policy.delay(1, rand=lambda: 1.0) == 1.0
    assert policy.delay(5, rand=lambda: 1.0) == 1.5
    assert all(1.0 <= policy.delay(1) <= 2.0 for _ in range(200))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_retries": -1},
        {"wait": -0.1},
        {"backoff": "linear"},
        {"max_wait": -1.0},
        {"jitter": 1.5},
        {"jitter": -0.1},
    ],
)
def test_retry_policy_rejects_impossible_values(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        RetryPolicy(**kwargs)


def test_worker_pool_needs_a_positive_max_parallel() -> None:
    with pytest.raises(ValueError, match="max_parallel"):
        BatchPolicy("worker_pool")
    with pytest.raises(ValueError, match="max_parallel"):
        BatchPolicy("worker_pool", max_parallel=0)


def test_batch_policy_rejects_unknown_strategy() -> None:
    with pytest.raises(ValueError, match="strategy"):
        BatchPolicy("random")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("policy", "size"),
    [
        (BatchPolicy(), 1),
        (BatchPolicy("serial", max_parallel=8), 1),
        (BatchPolicy("parallel"), None),
        (BatchPolicy("parallel", max_parallel=3), 3),
        (BatchPolicy("worker_pool", max_parallel=4), 4),
    ],
)
def test_pool_size_says_how_many_items_may_run_at_once(
    policy: BatchPolicy, size: int | None
) -> None:
    assert policy.pool_size == size
