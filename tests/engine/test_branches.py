"""Fan-out with ``run_branches``: concurrent branches that meet at a node, each with its own
shared, under the run's step limit, with cancellation."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping
from typing import Any

import pytest

from flowrunner.engine import Context, Flow, Node, run_branches
from flowrunner.errors import NodeFailed, StepLimitExceeded


class Fan(Node):
    """Runs its branches and outputs ``{name: output}``; then follows ``default``."""

    def __init__(self, branches: dict[str, Node], until: Node | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self._fan = branches
        self.until = until
        self.copies: dict[str, dict[str, Any]] = {}

    @property
    def branches(self) -> Mapping[str, Node]:
        return self._fan

    def prep(self, ctx: Context) -> Context:
        return ctx

    async def exec(self, prep_res: Context) -> Any:
        done = await run_branches(prep_res, self._fan, until=self.until)
        self.copies = {b.name: b.shared for b in done}
        return {b.name: b.output for b in done}


class Step(Node):
    """Appends its id to the input list and writes shared[its id]; optional gates."""

    def __init__(
        self,
        node_id: str,
        *,
        wait_for: asyncio.Event | None = None,
        sets: asyncio.Event | None = None,
        visits: list[str] | None = None,
    ) -> None:
        super().__init__(node_id=node_id)
        self.wait_for = wait_for
        self.sets = sets
        self.visits = visits if visits is not None else []

    def prep(self, ctx: Context) -> Any:
        ctx.shared[self.node_id] = True
        return ctx.input

    async def exec(self, prep_res: Any) -> Any:
        self.visits.append(self.node_id)
        if self.sets is not None:
            self.sets.set()
        if self.wait_for is not None:
            await self.wait_for.wait()
        return [*(prep_res or []), self.node_id]


class Join(Node):
    def exec(self, prep_res: Any) -> Any:
        return sorted(prep_res.items())


async def test_branches_run_at_once_and_meet_at_the_join_node() -> None:
    b_started = asyncio.Event()
    # a1 waits until b has started: run one branch after the other and this never finishes.
    a1, a2 = Step("a1", wait_for=b_started), Step("a2")
    b = Step("b", sets=b_started)
    join = Join(node_id="join")
    a1 >> a2 >> join
    b >> join
    fan = Fan({"left": a1, "right": b}, until=join, node_id="fan")
    fan >> join
    async with asyncio.timeout(30):  # hang guard only
        result = await Flow(fan).run([], shared={"k": 1})
    assert result.output == [("left", ["a1", "a2"]), ("right", ["b"])]
    assert result.results["fan"] == {"left": ["a1", "a2"], "right": ["b"]}
    assert result.results["a2"] == ["a1", "a2"]  # branch nodes are recorded in the run
    assert result.steps == 5  # fan, a1, a2, b, join
    assert result.shared == {"k": 1}  # each branch wrote to its own copy
    assert fan.copies == {"left": {"k": 1, "a1": True, "a2": True}, "right": {"k": 1, "b": True}}


async def test_a_branch_without_the_join_ends_where_its_path_ends() -> None:
    fan = Fan({"only": Step("x")}, node_id="fan")
    result = await Flow(fan).run([])
    assert result.output == {"only": ["x"]}
    assert set(Flow(fan).nodes()) == {"fan", "x"}


async def test_the_step_limit_counts_every_branch() -> None:
    def chain(prefix: str, length: int) -> Node:
        nodes = [Step(f"{prefix}{i}") for i in range(length)]
        for a, b in itertools.pairwise(nodes):
            a >> b
        return nodes[0]

    fan = Fan({"a": chain("a", 4), "b": chain("b", 4)}, node_id="fan")
    assert (await Flow(fan, max_steps=9).run([])).steps == 9
    with pytest.raises(NodeFailed) as caught:
        await Flow(fan, max_steps=8).run([])
    assert isinstance(caught.value.cause, StepLimitExceeded)  # the fan-out node failed with it


async def test_a_failing_branch_cancels_the_others_and_fails_the_fan_out() -> None:
    never = asyncio.Event()
    cancelled: list[str] = []

    class Slow(Node):
        async def exec(self, prep_res: Any) -> Any:
            try:
                await never.wait()
            except asyncio.CancelledError:
                cancelled.append(self.node_id)
                raise

    class Boom(Node):
        async def exec(self, prep_res: Any) -> Any:
            await asyncio.sleep(0)
            raise ValueError("boom")

    fan = Fan({"slow": Slow(node_id="slow"), "boom": Boom(node_id="boom")}, node_id="fan")
    async with asyncio.timeout(30):
        with pytest.raises(NodeFailed) as caught:
            await Flow(fan).run()
    assert caught.value.node_id == "fan"
    assert cancelled == ["slow"]


async def test_cancelling_the_run_cancels_every_branch() -> None:
    started = asyncio.Event()
    cancelled: list[str] = []

    class Wait(Node):
        async def exec(self, prep_res: Any) -> Any:
            started.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.append(self.node_id)
                raise

    fan = Fan({"a": Wait(node_id="a"), "b": Wait(node_id="b")}, node_id="fan")
    task = asyncio.create_task(Flow(fan).run())
    async with asyncio.timeout(30):
        await started.wait()
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert sorted(cancelled) == ["a", "b"]


async def test_run_branches_outside_a_flow_is_refused() -> None:
    with pytest.raises(RuntimeError, match="Flow"):
        await run_branches(Context(), {"a": Step("a")})


async def test_branch_outputs_go_through_the_runs_size_check() -> None:
    seen: list[str] = []

    def check(node_id: str, value: Any, total: int) -> int:
        seen.append(node_id)
        return total

    fan = Fan({"a": Step("a"), "b": Step("b")}, node_id="fan")
    await Flow(fan).run([], size_check=check)
    assert sorted(seen) == ["a", "b", "fan"]
