"""Running a batch node's exec over its items: serially, all at once, or in a bounded pool.

Whatever the strategy, the output lists results in input order, each item is retried on its
own, and the first item that finally fails fails the node: the items still running are
cancelled and awaited before the error propagates, so nothing outlives the node.

With a size check on the context, each item's output is added to the node's running total as
the item completes; the item that takes it past the limit fails the node like any failing item.
A fan-out whose items each return something big thus stops after a few items, instead of
building the whole output and finding out afterwards.

A batch node's ``prep`` may return ``Unbatched(value)`` instead of items: exec then runs once
on ``value`` and the output is not wrapped in a list (a node that is a batch only when its
input turns out to be a list).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flowrunner.engine.context import Context, SizeCheck
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
    check = ctx._size_check
    if check is not None:
        return await _checked(node, ctx, items, size, check)
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


async def _checked(
    node: Node, ctx: Context, items: list[Any], size: int | None, check: SizeCheck
) -> list[Any]:
    """The same strategies, each item's output counted against the size check as it lands.

    Kept apart from the unchecked path so a run without a check pays nothing for it.
    """
    node_id = node.node_id
    # Brackets and commas of the output list, counted up front like any other byte.
    total = check(node_id, [], 0) + max(0, len(items) - 1)
    out: list[Any] = [None] * len(items)

    async def one(index: int, item: Any) -> None:
        nonlocal total
        value = await node._exec_item(ctx, item, index)
        # One event loop thread: the read-add-write of ``total`` cannot interleave.
        total = check(node_id, value, total)
        out[index] = value

    if size == 1 or len(items) <= 1:
        for index, item in enumerate(items):
            await one(index, item)
        return out
    loop = asyncio.get_running_loop()
    if size is None or size >= len(items):
        await all_or_cancel([loop.create_task(one(i, item)) for i, item in enumerate(items)])
        return out
    pending: Iterator[tuple[int, Any]] = iter(enumerate(items))

    async def worker() -> None:
        for index, item in pending:
            await one(index, item)

    await all_or_cancel([loop.create_task(worker()) for _ in range(size)])
    return out


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
