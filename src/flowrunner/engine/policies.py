"""How a node retries a failed ``exec`` and how a batch node spreads its items.

Both policies are frozen values checked when they are built, so a bad policy fails when the
flow is compiled, not in the middle of a run.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

__all__ = ["NO_RETRY", "BatchPolicy", "RetryPolicy"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Extra ``exec`` attempts after the first, and the wait between them.

    ``wait`` is the delay before the first retry. With ``backoff="exponential"`` the delay
    before retry *n* is ``wait * 2**(n-1)``, capped at ``max_wait``. ``jitter`` (0..1) takes
    up to that fraction off each delay at random, so many failing runs do not retry in step;
    jitter only ever shortens a delay, so ``max_wait`` stays a true upper bound.
    """

    max_retries: int = 0
    wait: float = 0.0
    backoff: Literal["fixed", "exponential"] = "fixed"
    max_wait: float | None = None
    jitter: float = 0.0

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.wait < 0:
            raise ValueError(f"wait must be >= 0, got {self.wait}")
        if self.backoff not in ("fixed", "exponential"):
            raise ValueError(f"backoff must be 'fixed' or 'exponential', got {self.backoff!r}")
        if self.max_wait is not None and self.max_wait < 0:
            raise ValueError(f"max_wait must be >= 0, got {self.max_wait}")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError(f"jitter must be between 0 and 1, got {self.jitter}")

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based) before the next."""
        base = self.wait
        if self.backoff == "exponential":
            # Cap the exponent too: 2**attempt overflows a float long before anyone waits it.
            base = self.wait * 2.0 ** min(attempt - 1, 64)
        if self.max_wait is not None and base > self.max_wait:
            base = self.max_wait
        if self.jitter:
            base -= base * self.jitter * rand()
        return base


NO_RETRY = RetryPolicy()
"""The default: one attempt, no retry. Shared because policies are immutable."""


@dataclass(frozen=True, slots=True)
class BatchPolicy:
    """How a batch node runs ``exec`` over the items its ``prep`` returned.

    ``serial`` runs items one after another; ``parallel`` runs them all at once; ``worker_pool``
    runs at most ``max_parallel`` at a time. ``parallel`` with a ``max_parallel`` behaves as a
    pool of that size, because an explicit bound is what the author asked for.
    """

    strategy: Literal["serial", "parallel", "worker_pool"] = "serial"
    max_parallel: int | None = None

    def __post_init__(self) -> None:
        if self.strategy not in ("serial", "parallel", "worker_pool"):
            raise ValueError(
                f"batch strategy must be serial, parallel or worker_pool, got {self.strategy!r}"
            )
        if self.max_parallel is not None and self.max_parallel <= 0:
            raise ValueError(f"max_parallel must be > 0, got {self.max_parallel}")
        if self.strategy == "worker_pool" and self.max_parallel is None:
            raise ValueError("the worker_pool batch strategy needs max_parallel > 0")

    @property
    def pool_size(self) -> int | None:
        """How many items may run at once; ``None`` means all of them, ``1`` means serial."""
        if self.strategy == "serial":
            return 1
        return self.max_parallel
