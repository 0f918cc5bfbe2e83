"""Runs executing at once over the whole cluster, per account and per flow, kept in Redis.

A worker takes a slot before it runs a run and gives it back when the run ends. Slots are
members of a sorted set per account (and per flow) scored by when they expire: a worker
renews the ones it holds, so those of a worker that died lapse after the lease TTL. A run
over a limit is not run and not re-queued in the broker (where it would sit in front of other
accounts' runs and be retried in a loop): it is *parked* in its account's waiting list in
Redis and its message is acknowledged. Giving a slot back wakes that account's next parked
runs (they are enqueued again); a periodic sweep does the same for slots that lapsed. So an
account with hundreds of runs waiting holds at most its limit of workers, and another
account's run goes through the broker past them.

Each step is one Lua script: check and take, or park, atomically across workers. A parked run
keeps its queue lease in the store: if Redis loses the lists, recovery enqueues it again once
that lease lapses (``queue_lease_seconds``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass

from redis import asyncio as aioredis

PREFIX = "flowrunner:limits:"
SWEEP_ACCOUNTS = 100  # accounts with parked runs looked at per sweep (at random)

# KEYS: account slots, flow slots, waiting list, waiting set.
# ARGV: execution id, now (ms), expiry (ms), account limit, flow limit, ticket, account id.
_TAKE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[2])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
  return 1
end
local account_limit = tonumber(ARGV[4])
local flow_limit = tonumber(ARGV[5])
if (account_limit > 0 and redis.call('ZCARD', KEYS[1]) >= account_limit)
    or (flow_limit > 0 and redis.call('ZCARD', KEYS[2]) >= flow_limit) then
  if not redis.call('LPOS', KEYS[3], ARGV[6]) then
    redis.call('RPUSH', KEYS[3], ARGV[6])
  end
  redis.call('SADD', KEYS[4], ARGV[7])
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 1
"""

# KEYS: account slots, flow slots (or the account's again), waiting list, waiting set.
# ARGV: execution id ('' for a sweep), now (ms), account limit, account id.
# Returns the parked tickets to enqueue again: as many as the account has free slots (one
# when only flows are limited: it may be another flow's).
_RELEASE = """
if ARGV[1] ~= '' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
local free = 1
local account_limit = tonumber(ARGV[3])
if account_limit > 0 then free = account_limit - redis.call('ZCARD', KEYS[1]) end
local out = {}
for _ = 1, free do
  local ticket = redis.call('LPOP', KEYS[3])
  if not ticket then break end
  out[#out + 1] = ticket
end
if redis.call('LLEN', KEYS[3]) == 0 then redis.call('SREM', KEYS[4], ARGV[4]) end
return out
"""


@dataclass(frozen=True, slots=True)
class Ticket:
    """What a parked run needs to be enqueued again."""

    account_id: str
    execution_id: str
    flow_id: str
    queue: str

    def encode(self) -> str:
        return json.dumps([self.account_id, self.execution_id, self.flow_id, self.queue])

    @classmethod
    def decode(cls, raw: bytes | str) -> Ticket:
        account_id, execution_id, flow_id, queue = json.loads(raw)
        return cls(account_id, execution_id, flow_id, queue)


class ClusterLimits:
    """``per_account`` / ``per_flow`` runs at once over every worker sharing ``redis_url``."""

    def __init__(
        self,
        redis_url: str,
        *,
        per_account: int | None,
        per_flow: int | None,
        ttl_seconds: float,
        prefix: str = PREFIX,
        timeout: float = 2.0,
    ) -> None:
        self._redis = aioredis.from_url(
            redis_url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self._per_account = per_account or 0
        self._per_flow = per_flow or 0
        self._ttl_ms = int(ttl_seconds * 1000)
        self._prefix = prefix
        self._take = self._redis.register_script(_TAKE)
        self._release = self._redis.register_script(_RELEASE)

    @property
    def enabled(self) -> bool:
        return bool(self._per_account or self._per_flow)

    def _keys(self, ticket: Ticket) -> list[str]:
        p = self._prefix
        return [
            f"{p}account:{ticket.account_id}",
            f"{p}flow:{ticket.account_id}:{ticket.flow_id}",
            f"{p}waiting:{ticket.account_id}",
            f"{p}waiting",
        ]

    async def take(self, ticket: Ticket) -> bool:
        """A slot for the run (True), or it is parked until one frees up (False)."""
        if not self.enabled:
            return True
        now = _now_ms()
        args: list[str | int] = [
            ticket.execution_id, now, now + self._ttl_ms, self._per_account,
            self._per_flow, ticket.encode(), ticket.account_id,
        ]  # fmt: skip
        return bool(await self._take(keys=self._keys(ticket), args=args))

    async def renew(self, tickets: Iterable[Ticket]) -> None:
        """Push the expiry of the slots of runs still running here."""
        if not self.enabled:
            return
        until = _now_ms() + self._ttl_ms
        async with self._redis.pipeline(transaction=False) as pipe:
            for ticket in tickets:
                account, flow = self._keys(ticket)[:2]
                pipe.zadd(account, {ticket.execution_id: until}, xx=True)
                pipe.zadd(flow, {ticket.execution_id: until}, xx=True)
            await pipe.execute()

    async def release(self, ticket: Ticket) -> list[Ticket]:
        """Give the run's slot back; the parked runs of its account to enqueue now."""
        if not self.enabled:
            return []
        args: list[str | int] = [
            ticket.execution_id, _now_ms(), self._per_account, ticket.account_id,
        ]  # fmt: skip
        raw = await self._release(keys=self._keys(ticket), args=args)
        return [Ticket.decode(item) for item in raw]

    async def due(self) -> list[Ticket]:
        """Parked runs of accounts whose slots lapsed (a worker died) or whose wake-up was
        lost: the periodic sweep's share."""
        if not self.enabled:
            return []
        found: list[Ticket] = []
        accounts = await self._redis.srandmember(f"{self._prefix}waiting", SWEEP_ACCOUNTS)
        for raw in accounts or ():
            account = raw.decode() if isinstance(raw, bytes) else str(raw)
            keys = [
                f"{self._prefix}account:{account}",
                f"{self._prefix}account:{account}",
                f"{self._prefix}waiting:{account}",
                f"{self._prefix}waiting",
            ]
            popped = await self._release(
                keys=keys, args=["", _now_ms(), self._per_account, account]
            )
            found += [Ticket.decode(item) for item in popped]
        return found

    async def close(self) -> None:
        await self._redis.aclose()


def _now_ms() -> int:
    return int(time.time() * 1000)
