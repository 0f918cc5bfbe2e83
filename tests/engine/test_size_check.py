"""The engine's size check: a node's output, and a batch's items counted as they finish."""

from __future__ import annotations

from typing import Any

import pytest

from flowrunner.engine import BatchPolicy, Flow, Node
from flowrunner.errors import NodeFailed


class TooBig(Exception):
    pass


def budget(limit: int, seen: list[Any]) -> Any:
    """A size check where each value weighs ``len(value)`` and the total may not pass ``limit``."""

    def check(node_id: str, value: Any, so_far: int) -> int:
        seen.append((node_id, value))
        total = so_far + len(value)
        if total > limit:
            raise TooBig(f"{node_id}: {total} > {limit}")
        return total

    return check


class Echo(Node):
    """Each item's output is ten copies of the item: outputs outweigh inputs."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.calls = 0

    async def exec(self, prep_res: Any) -> Any:
        self.calls += 1
        return [prep_res] * 10


@pytest.mark.parametrize(
    ("strategy", "max_parallel"), [("serial", None), ("worker_pool", 2), ("parallel", 3)]
)
async def test_a_batch_fails_at_the_item_that_crosses_the_limit_without_running_the_rest(
    strategy: Any, max_parallel: int | None
) -> None:
    node = Echo(node_id="fan", batch=BatchPolicy(strategy, max_parallel=max_parallel))
    seen: list[Any] = []
    with pytest.raises(NodeFailed) as failed:
        await Flow(node).run(list(range(1000)), size_check=budget(35, seen))
    assert isinstance(failed.value.cause, TooBig)
    assert failed.value.node_id == "fan"
    # 0 (the empty list) + 10 + 10 + 10, then the fourth item crosses 35: at most the pool's
    # worth of items beyond it had started.
    assert node.calls <= 4 + (max_parallel or 0)


async def test_a_plain_node_output_is_checked_before_post_and_can_take_the_error_edge() -> None:
    posted: list[Any] = []

    class Big(Node):
        def exec(self, prep_res: Any) -> Any:
            return "x" * 100

        def post(self, ctx: Any, prep_res: Any, exec_res: Any) -> str | None:
            posted.append(exec_res)
            return None

    class Handler(Node):
        def prep(self, ctx: Any) -> Any:
            return ctx.error.type

        def exec(self, prep_res: Any) -> Any:
            return prep_res

    big = Big(node_id="big")
    big.connect(Handler(node_id="handler"), "error")
    result = await Flow(big).run("in", size_check=budget(50, []))
    assert posted == []
    assert result.output == "TooBig"


async def test_outputs_under_the_limit_pass_and_sub_flows_are_checked_too() -> None:
    inner = Echo(node_id="inner")
    sub = Flow(inner, node_id="sub")
    seen: list[Any] = []
    result = await Flow(sub).run("ab", size_check=budget(100, seen))
    assert result.output == ["ab"] * 10
    assert [node_id for node_id, _ in seen] == ["inner"]
