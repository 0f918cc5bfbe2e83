"""Every delivery attempt, kept for the API: status, latency, a snippet of the response.

Attempts live in the key-value store (namespace ``webhook-attempts``, key
``<delivery id>:<attempt number>``), expiring after ``RETENTION``: the outbox record keeps the
counts and the last outcome, these keep each attempt's detail for as long as anyone looks, or
until retention deletes the delivery with its run (``ExecutionStore.delete``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flowrunner.storage import KVStore
from flowrunner.storage.records import ATTEMPTS_NAMESPACE, attempts_prefix

NAMESPACE = ATTEMPTS_NAMESPACE
RETENTION = timedelta(days=30)
SNIPPET_CHARS = 512


@dataclass(frozen=True, slots=True)
class Attempt:
    delivery_id: str
    number: int
    at: datetime
    status_code: int | None
    latency_ms: float
    response: str
    error: str | None
    next_attempt_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {
            "delivery_id": self.delivery_id,
            "number": self.number,
            "at": self.at.isoformat(),
            "status_code": self.status_code,
            "latency_ms": round(self.latency_ms, 3),
            "response": self.response,
            "error": self.error,
            "next_attempt_at": self.next_attempt_at.isoformat() if self.next_attempt_at else None,
        }


def snippet(text: str) -> str:
    return text if len(text) <= SNIPPET_CHARS else text[:SNIPPET_CHARS] + "…"


async def save(kv: KVStore, account_id: str, attempt: Attempt) -> None:
    key = f"{attempts_prefix(attempt.delivery_id)}{attempt.number:04d}"
    await kv.put(account_id, NAMESPACE, key, attempt.as_json(), ttl=RETENTION)


async def history(kv: KVStore, account_id: str, delivery_id: str) -> list[dict[str, Any]]:
    page = await kv.list(account_id, NAMESPACE, prefix=attempts_prefix(delivery_id), limit=100)
    return [dict(e.value) for e in page.items if isinstance(e.value, dict)]
