"""Run-scoped values: what a run's caller hands its nodes, on the Context and nowhere else."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flowrunner.engine import (
    BatchPolicy,
    Checkpoint,
    Context,
    Flow,
    Node,
    NodeEvent,
    RunScoped,
    run_branches,
)

TOKEN: RunScoped[str] = RunScoped("token", "none")
OTHER: RunScoped[str] = RunScoped("token", "other default")  # same name, another key


class Reads(Node):
    """Outputs what it sees under TOKEN and OTHER."""

    def prep(self, ctx: Context) -> tuple[str, str]:
        return ctx.scoped(TOKEN), ctx.scoped(OTHER)

    def exec(self, prep_res: tuple[str, str]) -> list[str]:
        return list(prep_res)


class ReadsPerItem(Node):
    def prep(self, ctx: Context) -> list[str]:
        return [ctx.scoped(TOKEN)] * 3

    async def exec(self, prep_res: str) -> str:
        return prep_res


class Fan(Node):
    def __init__(self, branches: dict[str, Node], **kw: Any) -> None:
        super().__init__(**kw)
        self._fan = branches

    @property
    def branches(self) -> Mapping[str, Node]:
        return self._fan

    def prep(self, ctx: Context) -> Context:
        return ctx

    async def exec(self, prep_res: Context) -> Any:
        done = await run_branches(prep_res, self._fan)
        return {b.name: b.output for b in done}


async def test_a_node_reads_what_the_caller_provided_and_defaults_otherwise() -> None:
    flow = Flow(Reads(node_id="read"))
    given = await flow.run(scoped={TOKEN: "s3cret"})
    assert given.output == ["s3cret", "other default"]
    assert (await flow.run()).output == ["none", "other default"]


async def test_sub_flows_batch_items_and_branches_see_the_run_s_values() -> None:
    inner = Flow(Reads(node_id="inner-read"), node_id="inner")
    batch = ReadsPerItem(node_id="batch", batch=BatchPolicy("parallel"))
    fan = Fan({"a": Reads(node_id="a"), "b": Reads(node_id="b")}, node_id="fan")
    inner >> batch >> fan
    result = await Flow(inner).run(scoped={TOKEN: "t"})
    assert result.results["inner"] == ["t", "other default"]
    assert result.results["batch"] == ["t", "t", "t"]
    assert result.output == {"a": ["t", "other default"], "b": ["t", "other default"]}


async def test_values_stay_out_of_shared_results_events_and_checkpoints() -> None:
    class Holds(Node):
        def prep(self, ctx: Context) -> None:
            assert ctx.scoped(TOKEN) == "s3cret-value"

    events: list[NodeEvent] = []
    checkpoints: list[str] = []

    async def keep(cp: Checkpoint) -> None:
        checkpoints.append(json.dumps([cp.shared, cp.results, cp.output], default=str))

    result = await Flow(Holds(node_id="hold")).run(
        {"in": 1},
        shared={},
        observer=events.append,
        checkpoint=keep,
        scoped={TOKEN: "s3cret-value"},
    )
    seen = json.dumps([result.shared, result.results, result.output], default=str)
    seen += "".join(checkpoints) + "".join(repr(e) for e in events)
    assert checkpoints
    assert "s3cret" not in seen


def test_a_context_copies_the_values_it_is_given() -> None:
    given = {TOKEN: "a"}
    ctx = Context(scoped=given)
    given[TOKEN] = "b"
    assert ctx.scoped(TOKEN) == "a"
    assert ctx.child("sub").scoped(TOKEN) == "a"
    assert dict(ctx.scoped_values) == {TOKEN: "a"}
    assert repr(TOKEN) == "RunScoped('token')"
