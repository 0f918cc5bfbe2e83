"""The event bus: live execution events from the runner to WebSocket/SSE subscribers.

The store is the history; the bus only carries what happens from now on, best effort. A
subscriber therefore never trusts the bus alone: it replays from the store, then follows the
bus and fills any gap (a slow subscriber whose queue overflowed) from the store again. That
keeps the bus simple enough to swap for Redis pub/sub across processes.

Topics: one per execution, and one per (account, flow) for "every run of this flow".

A bus may lose its transport (Redis down or hung): publishing then drops live events (counted
in ``BusHealth.dropped_events``) and never holds up a run, and a subscription says it is not
``live`` while it reconnects, so followers poll the store meanwhile.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from flowrunner.executions.live_queue import LiveQueue
from flowrunner.storage import ExecutionEvent


@dataclass(frozen=True, slots=True)
class Topic:
    """Either one execution, or every execution of one flow of one account."""

    account_id: str
    execution_id: str | None = None
    flow_id: str | None = None

    def key(self) -> str:
        if self.execution_id is not None:
            return f"execution:{self.account_id}:{self.execution_id}"
        return f"flow:{self.account_id}:{self.flow_id}"


def topics_of(flow_id: str, event: ExecutionEvent) -> tuple[Topic, Topic]:
    """The two topics an event of a run of ``flow_id`` is published to."""
    return (
        Topic(event.account_id, execution_id=event.execution_id),
        Topic(event.account_id, flow_id=flow_id),
    )


@dataclass(frozen=True, slots=True)
class BusHealth:
    """What ``/healthz`` reports of the bus: whether it reaches its transport, how many live
    events it dropped since the process started (they are in the store all the same), and how
    many subscriptions are open and how many of those are live (the rest poll the store)."""

    kind: str
    connected: bool
    dropped_events: int
    subscriptions: int
    subscriptions_live: int


class Subscription(Protocol):
    """Live events of one topic, in publish order; ``lagged`` once any was dropped."""

    @property
    def lagged(self) -> bool: ...

    @property
    def live(self) -> bool:
        """False while the transport is lost: events published now are not delivered."""
        ...

    def __aiter__(self) -> AsyncIterator[ExecutionEvent]: ...

    async def next(self, within: float | None = None) -> ExecutionEvent | None:
        """The next event, or None after ``within`` seconds without one, or when the
        subscription lost or regained its transport (events may have been missed: look at
        the store)."""
        ...

    async def close(self) -> None: ...


class EventBus(Protocol):
    async def publish(self, flow_id: str, events: Sequence[ExecutionEvent]) -> None:
        """Deliver ``events`` (of one execution of ``flow_id``) to both of their topics."""
        ...

    async def subscribe(self, topic: Topic) -> Subscription:
        """Start receiving; events published after this returns are delivered while the
        subscription is ``live``. Never fails for the transport: a subscription made while
        it is down starts not live and goes live once it reconnects."""
        ...

    def health(self) -> BusHealth: ...


class _Queue(LiveQueue):
    """An in-process subscription: the bus offers each event straight to its queue."""

    __slots__ = ("_bus", "_key")

    live = True  # nothing between the publisher and the queue can fail

    def __init__(self, bus: InProcessBus, key: str) -> None:
        super().__init__()
        self._bus = bus
        self._key = key

    async def close(self) -> None:
        self._bus._drop(self._key, self)


class InProcessBus:
    """Fan-out inside one process (the embedded default and the tests)."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[_Queue]] = {}

    async def publish(self, flow_id: str, events: Sequence[ExecutionEvent]) -> None:
        if not events or not self._subscribers:
            return
        for topic in topics_of(flow_id, events[0]):
            for queue in self._subscribers.get(topic.key(), ()):
                for event in events:
                    queue.offer(event)

    async def subscribe(self, topic: Topic) -> Subscription:
        key = topic.key()
        queue = _Queue(self, key)
        self._subscribers.setdefault(key, set()).add(queue)
        return queue

    def health(self) -> BusHealth:
        open_ = sum(len(queues) for queues in self._subscribers.values())
        return BusHealth("in-process", True, 0, subscriptions=open_, subscriptions_live=open_)

    def _drop(self, key: str, queue: _Queue) -> None:
        queues = self._subscribers.get(key)
        if queues is not None:
            queues.discard(queue)
            if not queues:
                del self._subscribers[key]
