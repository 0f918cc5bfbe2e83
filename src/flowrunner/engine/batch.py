"""Running a batch node's exec over its items: serially, all at once, or in a bounded pool.

Whatever the strategy, the output lists results in input order, each item is retried on its
own, and the first item that finally fails fails the node: the items still running are
cancelled and awaited before the error propagates, so nothing outlives the node.

A batch node's ``prep`` may return ``Unbatched(value)`` instead of items: exec then runs once
on ``value`` and the output is not wrapped in a list (a node that is a batch only when its
input turns out to be a list).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flowrunner.engine.context import Context
from flowrunner.engine.policies import BatchPolicy

if TYPE_CHECKING:
    from flowrunner.engine.node import Node

__all__ = ["Unbatched", "all_or_cancel", "run_batch"]


@dataclass(frozen=True, slots=True)
class Unbatched:
    """What a batch node's ``prep`` returns to run ``exec`` once on ``value``, as a plain node."""

    value: Any


async def run_batch(node: Node, ctx: Context, prep_res: Any, policy: BatchPolicy) -> list[Any]:
    """exec every item of ``prep_res`` (an iterable; ``None`` means no items)."""
    items = [] if prep_res is None else list(prep_res)
    count = len(items)
    size = policy.pool_size
    if size == 1 or count <= 1:
        # Serial needs no tasks at all: awaiting in a loop is the cheapest correct thing.
        return [await node._exec_item(ctx, item, index) for index, item in enumerate(items)]
    loop = asyncio.get_running_loop()
    if size is None or size >= count:
        tasks = [
            loop.create_task(node._exec_item(ctx, item, index)) for index, item in enumerate(items)
        ]
        return await all_or_cancel(tasks)
    return await _pool(node, ctx, items, size, loop)


async def _pool(
    node: Node, ctx: Context, items: list[Any], size: int, loop: asyncio.AbstractEventLoop
) -> list[Any]:
    """``size`` workers pulling from one shared iterator: at most ``size`` items in flight."""
    out: list[Any] = [None] * len(items)
    pending: Iterator[tuple[int, Any]] = iter(enumerate(items))

    async def worker() -> None:
        # One event loop thread, so sharing the iterator between workers needs no lock.
        for index, item in pending:
            out[index] = await node._exec_item(ctx, item, index)

    await all_or_cancel([loop.create_task(worker()) for _ in range(size)])
    return out


async def all_or_cancel(tasks: list[asyncio.Task[Any]]) -> list[Any]:
    """Every task's result in order; on the first failure (or our cancellation) the rest are
    cancelled and awaited before the error propagates."""
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        # gather raises the first failure but leaves its siblings running; stop them and
        # wait until they have unwound (this also covers our own cancellation).
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks)
        raise
