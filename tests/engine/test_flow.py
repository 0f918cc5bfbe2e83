"""Flow: routing by action, error edges, step limit, nesting, cancellation, resume."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from flowrunner.engine import (
    BatchPolicy,
    Context,
    ErrorInfo,
    Flow,
    Node,
    NodeEvent,
    RetryPolicy,
)
from flowrunner.errors import ExecutionError, NodeFailed, StepLimitExceeded


class Say(Node):
    """Outputs ``value`` (default: its input) and returns ``action`` from post."""

    def __init__(self, node_id: str, value: Any = None, action: str | None = None) -> None:
        super().__init__(node_id=node_id)
        self.value = value
        self.action = action

    def exec(self, prep_res: Any) -> Any:
        return prep_res if self.value is None else self.value

    def post(self, ctx: Context, prep_res: Any, exec_res: Any) -> str | None:
        return self.action


class Boom(Node):
    def exec(self, prep_res: Any) -> Any:
        raise ValueError(f"bad input {prep_res!r}")


class Capture(Node):
    """Records what its context looked like: input, error and results."""

    def __init__(self, node_id: str) -> None:
        super().__init__(node_id=node_id)

    def exec(self, prep_res: Any) -> Any:
        return prep_res

    def prep(self, ctx: Context) -> Any:
        ctx.shared.setdefault("captured", []).append(
            {
                "id": self.node_id,
                "input": ctx.input,
                "error": ctx.error,
                "results": dict(ctx.results),
            }
        )
        return ctx.input


async def test_nodes_follow_the_edge_named_by_the_action() -> None:
    start = Say("start", action="right")
    start - "left" >> Say("left", "L")
    start - "right" >> Say("right", "R")
    result = await Flow(start).run()
    assert (result.output, result.last_node_id, list(result.results)) == (
        "R",
        "right",
        ["start", "right"],
    )


@pytest.mark.parametrize("action", [None, ""])
async def test_no_action_follows_the_default_edge(action: str | None) -> None:
    start = Say("start", action=action)
    start >> Say("next", "N")
    result = await Flow(start).run()
    assert result.output == "N"
    assert result.action is None


async def test_an_action_without_an_edge_falls_back_to_default() -> None:
    start = Say("start", action="unmapped")
    start >> Say("fallback", "F")
    start - "other" >> Say("other", "O")
    result = await Flow(start).run()
    assert result.last_node_id == "fallback"


async def test_an_action_with_no_edge_and_no_default_ends_the_flow_and_is_recorded() -> None:
    start = Say("start", "S", action="escalate")
    start - "other" >> Say("other")
    result = await Flow(start).run()
    assert (result.output, result.action, result.last_node_id) == ("S", "escalate", "start")


async def test_each_node_gets_the_previous_output_as_input_and_sees_earlier_results() -> None:
    first = Say("first", 1)
    first >> Capture("second")
    result = await Flow(first).run("run input")
    assert result.shared["captured"] == [
        {"id": "second", "input": 1, "error": None, "results": {"first": 1}}
    ]


async def test_a_failing_node_follows_its_error_edge_with_error_info_and_its_input() -> None:
    first = Say("first", 41)
    boom = first >> Boom(node_id="boom")
    boom - "error" >> Capture("handler") >> Capture("after")
    result = await Flow(first).run()
    handler, after = result.shared["captured"]
    assert handler["input"] == 41
    assert handler["error"] == ErrorInfo("boom", "ValueError", "bad input 41", 41)
    assert handler["error"].as_dict() == {
        "node_id": "boom",
        "type": "ValueError",
        "message": "bad input 41",
        "data": 41,
    }
    assert after["error"] is None  # the error belongs to the handler only
    assert "boom" not in result.results


async def test_a_failing_node_without_error_edge_fails_the_run_with_node_id_and_input() -> None:
    start = Say("start", {"order": 7})
    start >> Boom(node_id="charge")
    with pytest.raises(NodeFailed) as caught:
        await Flow(start).run()
    assert caught.value.node_id == "charge"
    assert caught.value.data == {"order": 7}
    assert isinstance(caught.value.cause, ValueError)
    assert caught.value.__cause__ is caught.value.cause


async def test_failures_in_prep_and_post_also_follow_the_error_edge() -> None:
    class BadPost(Node):
        def post(self, ctx: Context, prep_res: Any, exec_res: Any) -> str | None:
            raise KeyError("missing")

    node = BadPost(node_id="bad")
    node - "error" >> Capture("handler")
    result = await Flow(node).run("x")
    assert result.shared["captured"][0]["error"].type == "KeyError"


async def test_a_loop_that_never_ends_hits_the_step_limit() -> None:
    spin = Say("spin", action="again")
    spin - "again" >> spin
    with pytest.raises(StepLimitExceeded) as caught:
        await Flow(spin, max_steps=50).run()
    assert (caught.value.limit, caught.value.node_id) == (50, "spin")


async def test_a_bounded_loop_counts_every_visit_as_a_step() -> None:
    class Countdown(Node):
        def exec(self, prep_res: Any) -> Any:
            return prep_res - 1

        def post(self, ctx: Context, prep_res: Any, exec_res: Any) -> str | None:
            return "again" if exec_res > 0 else "done"

    node = Countdown()
    node - "again" >> node
    result = await Flow(node, max_steps=5).run(5)
    assert (result.output, result.action, result.steps) == (0, "done", 5)


@pytest.mark.parametrize(
    "kwargs", [{"retry": RetryPolicy(max_retries=1)}, {"batch": BatchPolicy("parallel")}]
)
def test_a_flow_refuses_retry_and_batch_policies(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="retry and batch do not apply"):
        Flow(Node(), **kwargs)


def test_max_steps_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_steps"):
        Flow(Node(), max_steps=0)


async def test_a_nested_flow_shares_the_shared_dict_and_keeps_its_own_results() -> None:
    class Mark(Node):
        def prep(self, ctx: Context) -> Any:
            ctx.shared.setdefault("marks", []).append(self.node_id)
            return ctx.input

        def exec(self, prep_res: Any) -> Any:
            return f"{prep_res}>{self.node_id}"

    inner_start = Mark(node_id="i1")
    inner_start >> Mark(node_id="i2")
    outer_start = Mark(node_id="o1")
    outer_start >> Flow(inner_start, node_id="sub") >> Mark(node_id="o2")
    shared: dict[str, Any] = {}
    result = await Flow(outer_start).run("in", shared=shared)
    assert result.shared is shared
    assert shared["marks"] == ["o1", "i1", "i2", "o2"]
    assert result.results == {"o1": "in>o1", "sub": "in>o1>i1>i2", "o2": "in>o1>i1>i2>o2"}


async def test_the_action_that_ends_a_nested_flow_routes_the_parent() -> None:
    inner = Flow(Say("inner", "x", action="approved"), node_id="sub")
    inner - "approved" >> Say("yes", "Y")
    inner - "rejected" >> Say("no", "N")
    result = await Flow(inner).run()
    assert result.output == "Y"


async def test_a_failure_inside_a_nested_flow_can_follow_the_parents_error_edge() -> None:
    sub = Flow(Boom(node_id="inner"), node_id="sub")
    sub - "error" >> Capture("handler")
    result = await Flow(sub).run("data")
    error = result.shared["captured"][0]["error"]
    assert (error.node_id, error.type, error.data) == ("sub", "NodeFailed", "data")
    assert "inner" in error.message


async def test_a_nested_flow_timeout_bounds_the_whole_sub_flow() -> None:
    class Slow(Node):
        async def exec(self, prep_res: Any) -> Any:
            await asyncio.sleep(1)

    with pytest.raises(NodeFailed) as caught:
        await Flow(Flow(Slow(), node_id="sub", timeout=0.01)).run()
    assert caught.value.cause.__class__.__name__ == "NodeTimeout"


async def test_cancelling_the_run_cancels_the_running_node_and_emits_canceled() -> None:
    entered = asyncio.Event()
    cancelled = asyncio.Event()

    class Waits(Node):
        async def exec(self, prep_res: Any) -> Any:
            entered.set()
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                cancelled.set()
                raise

    events: list[NodeEvent] = []
    inner = Flow(Waits(node_id="waits"), node_id="sub")
    task = asyncio.create_task(Flow(inner).run(observer=events.append))
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cancelled.is_set()
    assert [(e.kind, e.node_id) for e in events if e.kind == "canceled"] == [
        ("canceled", "waits"),
        ("canceled", "sub"),
    ]


async def test_checkpoint_hook_runs_after_each_node_in_order_before_the_next() -> None:
    seen: list[tuple[str, str | None, str | None, Any, int, dict[str, Any]]] = []

    async def checkpoint(cp: Any) -> None:
        seen.append((cp.node_id, cp.next_node_id, cp.action, cp.output, cp.steps, dict(cp.results)))

    a = Say("a", 1)
    b = a >> Boom(node_id="b")
    b - "error" >> Say("c", 3, action="end")
    result = await Flow(a).run(checkpoint=checkpoint)
    assert seen == [
        ("a", "b", None, 1, 1, {"a": 1}),
        ("b", "c", "error", None, 2, {"a": 1}),
        ("c", None, "end", 3, 3, {"a": 1, "c": 3}),
    ]
    assert result.steps == 3


async def test_error_checkpoint_carries_the_error_for_a_resume() -> None:
    checkpoints: list[Any] = []

    async def checkpoint(cp: Any) -> None:
        checkpoints.append(cp)

    boom = Boom(node_id="boom")
    boom - "error" >> Capture("handler")
    flow = Flow(boom)
    await flow.run("payload", checkpoint=checkpoint)
    error_cp = checkpoints[0]
    assert error_cp.error == ErrorInfo("boom", "ValueError", "bad input 'payload'", "payload")

    resumed = await flow.run(
        error_cp.error.data,
        start_at=error_cp.next_node_id,
        error=error_cp.error,
        steps=error_cp.steps,
        shared={},
    )
    assert resumed.shared["captured"][0]["error"] == error_cp.error
    assert resumed.steps == 2


async def test_start_at_resumes_with_the_given_input_and_results() -> None:
    a = Say("a", "A")
    a >> Capture("b") >> Say("c", "C")
    result = await Flow(a).run("A", start_at="b", results={"a": "A"})
    assert result.shared["captured"] == [
        {"id": "b", "input": "A", "error": None, "results": {"a": "A"}}
    ]
    assert (result.output, result.steps) == ("C", 2)


async def test_start_at_an_unknown_node_fails_clearly() -> None:
    with pytest.raises(ExecutionError, match="unknown node 'nope'"):
        await Flow(Say("a")).run(start_at="nope")


def test_nodes_lists_every_reachable_node_by_id() -> None:
    a = Say("a")
    b = a >> Say("b")
    b - "error" >> Say("e")
    b >> a  # a cycle is fine
    assert sorted(Flow(a).nodes()) == ["a", "b", "e"]


def test_two_nodes_with_one_id_are_rejected() -> None:
    a = Say("a")
    a >> Say("a")
    with pytest.raises(ValueError, match="share the id 'a'"):
        Flow(a).nodes()


async def test_concurrent_runs_of_one_flow_do_not_interfere() -> None:
    class Step(Node):
        async def exec(self, prep_res: Any) -> Any:
            await asyncio.sleep(0.001 * (prep_res % 3))
            return prep_res + 1

        def post(self, ctx: Context, prep_res: Any, exec_res: Any) -> str | None:
            ctx.shared["trail"].append(exec_res)
            return "again" if exec_res < ctx.shared["stop"] else None

    step = Step()
    step - "again" >> step
    flow = Flow(step)
    runs = [flow.run(n, shared={"trail": [], "stop": n + 5}) for n in range(40)]
    results = await asyncio.gather(*runs)
    for n, result in enumerate(results):
        assert result.output == n + 5
        assert result.shared["trail"] == list(range(n + 1, n + 6))
        assert result.steps == 5
    assert step.successors["again"] is step


async def test_execution_metadata_is_read_only() -> None:
    class ReadsExecution(Node):
        def prep(self, ctx: Context) -> Any:
            return dict(ctx.execution)

        def exec(self, prep_res: Any) -> Any:
            return prep_res

    execution = {"id": "ex-1", "flow_id": "f-1"}
    result = await Flow(ReadsExecution()).run(execution=execution)
    assert result.output == execution

    class WritesExecution(Node):
        def prep(self, ctx: Context) -> Any:
            ctx.execution["id"] = "forged"  # type: ignore[index]

    with pytest.raises(NodeFailed) as caught:
        await Flow(WritesExecution()).run(execution=execution)
    assert isinstance(caught.value.cause, TypeError)
    assert execution["id"] == "ex-1"


async def test_a_failing_checkpoint_hook_stops_the_run_before_the_next_node() -> None:
    ran: list[str] = []

    class Record(Node):
        def exec(self, prep_res: Any) -> Any:
            ran.append(self.node_id)

    async def checkpoint(cp: Any) -> None:
        raise OSError("disk full")

    first = Record(node_id="first")
    first >> Record(node_id="second")
    with pytest.raises(OSError, match="disk full"):
        await Flow(first).run(checkpoint=checkpoint)
    assert ran == ["first"]


async def test_an_action_wired_to_end_stops_the_flow_even_with_a_default_edge() -> None:
    first = Say("first", value=1, action="stop")
    first.connect(Say("never"))  # the default edge an unwired "stop" would follow
    first.end("stop")
    flow = Flow(first)
    assert list(flow.nodes()) == ["first", "never"]
    result = await flow.run(None)
    assert (result.output, result.action, result.last_node_id, result.steps) == (
        1,
        "stop",
        "first",
        1,
    )


async def test_an_error_edge_wired_to_end_handles_the_failure_and_stops() -> None:
    boom = Boom(node_id="boom")
    boom.end("error")
    events: list[NodeEvent] = []
    result = await Flow(boom).run("x", observer=events.append)
    assert (result.output, result.action, result.last_node_id) == (None, "error", "boom")
    failed = [e for e in events if e.kind == "failed"]
    assert len(failed) == 1
    assert failed[0].next_node_id is None
