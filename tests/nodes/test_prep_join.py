"""A prep hook and the params' V8 expressions in one sandbox round trip, with exactly the
outcome of the two calls (expressions, then hook) that a host without the joined call gets.

Everything runs on the real sandbox: ``Wire`` only records what crosses to its workers
(request kind, reply bytes), and ``TwoCalls`` is the real sandbox seen through a host written
before ``evaluate_then_run`` existed, which is the two-call path to compare with.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import pytest

from flowrunner.definition import CompiledFlow, compile_flow, load_flow
from flowrunner.engine import NodeEvent
from flowrunner.errors import NodeFailed
from flowrunner.nodes.base import TOOL_ARGUMENTS
from flowrunner.scripting import Sandbox, ScriptResult
from flowrunner.scripting.codec import Reply
from flowrunner.scripting.host import SyntaxKind
from flowrunner.scripting.worker import OP_RUN


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(workers=1) as box:
        yield box


class Wire:
    """The kind of every run request sent to the sandbox's workers, and every reply."""

    def __init__(self, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
        self.kinds: list[bytes] = []
        self.replies: list[bytes] = []
        pool = sandbox._pool
        call = pool.call

        async def recorded(request: bytes, seconds: float) -> Reply:
            if request[:1] != OP_RUN:
                return await call(request, seconds)
            self.kinds.append(request[1:2])  # before the call: one that times out counts
            reply = await call(request, seconds)
            self.replies.append(reply.payload)
            return reply

        monkeypatch.setattr(pool, "call", recorded)

    def take(self) -> list[bytes]:
        kinds, self.kinds = self.kinds, []
        return kinds


@pytest.fixture
def wire(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Wire:
    return Wire(sandbox, monkeypatch)


class TwoCalls:
    """The real sandbox behind a host that has no ``evaluate_then_run``."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    async def evaluate_expression(self, code: str, scope: Mapping[str, Any]) -> Any:
        return await self.sandbox.evaluate_expression(code, scope)

    async def evaluate_expressions(
        self, codes: Sequence[str], scope: Mapping[str, Any]
    ) -> list[Any]:
        return await self.sandbox.evaluate_expressions(codes, scope)

    async def run_function(self, body: str, scope: Mapping[str, Any]) -> ScriptResult:
        return await self.sandbox.run_function(body, scope)

    def check_syntax(self, code: str, *, kind: SyntaxKind) -> None:
        self.sandbox.check_syntax(code, kind=kind)


FLOW = """\
metadata: {name: joined}
nodes:
  calc:
    type: set
    params:
      values:
        n: "${(0, input.n) + 1}"
        doubled: "${input.items.map(x => x * 2)}"
        again: ["${input.items.map(x => x * 2)}", "${input.n}", "text ${input.n}"]
        label: static
    hooks:
      prep: |
HOOK
"""


def flow_text(hook: str) -> str:
    return FLOW.replace("HOOK", "\n".join(f"        {line}" for line in hook.splitlines()))


async def outcome(flow: CompiledFlow, run_input: Any, **kwargs: Any) -> tuple[Any, ...]:
    """How a run ended and the log lines it wrote, in comparable form."""
    events: list[NodeEvent] = []
    try:
        result = await flow.run(run_input, observer=events.append, **kwargs)
    except NodeFailed as exc:
        ended: tuple[Any, ...] = ("failed", type(exc.cause).__name__, str(exc.cause))
    else:
        ended = ("ok", result.output, result.shared, result.results)
    logs = [(e.node_id, e.level, e.message) for e in events if e.kind == "log"]
    return ended, logs


async def both(
    sandbox: Sandbox,
    wire: Wire,
    hook: str,
    run_input: Any,
    *,
    text: str | None = None,
    **kwargs: Any,
) -> tuple[Any, ...]:
    """The outcome joined and the outcome with two calls, which the test compares; checks
    that the joined run made its ``p`` request first and the other none."""
    text = flow_text(hook) if text is None else text
    joined = await outcome(compile_flow(load_flow(text), scripts=sandbox), run_input, **kwargs)
    assert wire.take()[0] == b"p"
    load = load_flow(text)
    two = await outcome(compile_flow(load, scripts=TwoCalls(sandbox)), run_input, **kwargs)
    assert b"p" not in wire.take()
    return joined, two


INPUT = {"n": 2, "items": [1, 2]}


async def test_a_prep_hook_and_a_v8_expression_take_one_worker_round_trip(
    sandbox: Sandbox,
) -> None:
    flow = compile_flow(
        load_flow(flow_text("return {values: {...params.values, hooked: true}};")),
        scripts=sandbox,
    )
    await flow.run(INPUT)  # warm: the first run also starts the worker
    before = (await sandbox.worker_stats())["evaluations"]
    result = await flow.run(INPUT)
    after = (await sandbox.worker_stats())["evaluations"]
    assert after - before == 1
    assert result.output == {
        "n": 3,
        "doubled": [2, 4],
        "again": [[2, 4], 2, "text 2"],
        "label": "static",
        "hooked": True,
    }


async def test_a_hook_returning_params_gives_what_two_calls_give(
    sandbox: Sandbox, wire: Wire
) -> None:
    hook = """\
console.log("prep sees", JSON.stringify(params));
params.values.again[0].push(99);
return {values: {...params.values, hooked: params.values.n * 10}};"""
    joined, two = await both(sandbox, wire, hook, INPUT)
    assert joined == two
    (ended, output, _, _), logs = joined
    assert ended == "ok"
    assert output["hooked"] == 30
    assert output["again"] == [[2, 4, 99], 2, "text 2"]
    assert output["doubled"] == [2, 4]  # the same expression's other place: its own copy
    assert logs == [
        (
            "calc",
            "info",
            'prep sees {"values":{"n":3,"doubled":[2,4],"again":[[2,4],2,"text 2"],'
            '"label":"static"}}',
        )
    ]


async def test_a_hook_returning_nothing_keeps_the_resolved_params(
    sandbox: Sandbox, wire: Wire
) -> None:
    joined, two = await both(sandbox, wire, "params.values.n = 'changed'; // no return", INPUT)
    assert joined == two
    assert joined[0][1] == {
        "n": 3,
        "doubled": [2, 4],
        "again": [[2, 4], 2, "text 2"],
        "label": "static",
    }


async def test_a_hook_writing_shared_changes_the_run_state(sandbox: Sandbox, wire: Wire) -> None:
    hook = """\
shared.total = params.values.n + params.values.doubled.length;
shared.seen = params.values.again;
delete shared.items;"""
    joined, two = await both(sandbox, wire, hook, INPUT)
    assert joined == two
    shared = joined[0][2]
    assert shared["total"] == 5
    assert shared["seen"] == [[2, 4], 2, "text 2"]
    assert "items" not in shared


async def test_console_lines_of_every_level_reach_the_run_log(sandbox: Sandbox, wire: Wire) -> None:
    hook = """\
console.log("a", params.values.n);
console.warn("b", params.values.doubled);
console.error({n: params.values.n});
console.debug("d");"""
    joined, two = await both(sandbox, wire, hook, INPUT)
    assert joined == two
    assert joined[1] == [
        ("calc", "info", "a 3"),
        ("calc", "warning", "b [2,4]"),
        ("calc", "error", '{"n":3}'),
        ("calc", "debug", "d"),
    ]


async def test_a_throwing_expression_fails_the_node_by_name_and_the_hook_does_not_run(
    sandbox: Sandbox, wire: Wire
) -> None:
    hook = 'shared.hook_ran = true; console.log("hook ran");'
    joined, two = await both(sandbox, wire, hook, {"n": 2})  # no items: .map throws
    assert joined == two
    (ended, kind, message), logs = joined
    assert (ended, kind) == ("failed", "ExpressionError")
    assert "node 'calc', param 'values.doubled': expression ${input.items.map(x => x * 2)}" in (
        message
    )
    assert "TypeError" in message
    assert logs == []


async def test_a_throwing_hook_fails_the_node_and_keeps_its_console_lines(
    sandbox: Sandbox, wire: Wire
) -> None:
    hook = """\
console.log("about to throw", params.values.n);
throw new RangeError("bad " + params.values.doubled);"""
    joined, two = await both(sandbox, wire, hook, INPUT)
    assert joined == two
    (ended, kind, message), logs = joined
    assert (ended, kind) == ("failed", "ScriptError")
    assert message == "RangeError: bad 2,4 (line 2, column 7)"
    assert logs == [("calc", "info", "about to throw 3")]


async def test_promises_of_the_expressions_and_the_hook_settle_first(
    sandbox: Sandbox, wire: Wire
) -> None:
    text = """\
metadata: {name: promised}
nodes:
  calc:
    type: set
    params: {values: {n: "${Promise.resolve(input.n * 3)}", u: "${undefined}"}}
    hooks:
      prep: "return Promise.resolve({values: {n: params.values.n + 1, u: params.values.u}});"
"""
    joined = await outcome(compile_flow(load_flow(text), scripts=sandbox), INPUT)
    assert wire.take() == [b"p"]
    two = await outcome(compile_flow(load_flow(text), scripts=TwoCalls(sandbox)), INPUT)
    assert joined == two
    assert joined[0][1] == {"n": 7, "u": None}


async def test_a_secret_an_expression_uses_crosses_back_nowhere(
    sandbox: Sandbox, wire: Wire
) -> None:
    secret = "s3cr3t-" + "x" * 12
    text = """\
metadata: {name: secret}
nodes:
  calc:
    type: set
    params: {values: {length: "${secrets.TOKEN.split('').length}", n: "${(0, input.n)}"}}
    hooks:
      prep: |
        console.log("length", params.values.length);
        return {values: {length: params.values.length, n: params.values.n}};
"""
    flow = compile_flow(load_flow(text), scripts=sandbox)
    joined = await outcome(flow, INPUT, secrets={"TOKEN": secret})
    assert wire.take() == [b"p"]
    assert joined[0][1] == {"length": len(secret), "n": 2}
    assert joined[1] == [("calc", "info", f"length {len(secret)}")]
    assert not any(secret.encode() in reply for reply in wire.replies)
    assert secret not in repr(joined)


async def test_a_v8_expression_inside_text_makes_two_calls(sandbox: Sandbox, wire: Wire) -> None:
    text = """\
metadata: {name: text}
nodes:
  calc:
    type: set
    params: {values: {label: "n=${(0, input.n) + 1}"}}
    hooks: {prep: "return {values: {label: params.values.label + '!'}};"}
"""
    result = await compile_flow(load_flow(text), scripts=sandbox).run(INPUT)
    assert result.output == {"label": "n=3!"}
    assert wire.take() == [b"e", b"f"]


async def test_native_expressions_alone_make_only_the_hook_call(
    sandbox: Sandbox, wire: Wire
) -> None:
    text = """\
metadata: {name: native}
nodes:
  calc:
    type: set
    params: {values: {n: "${input.n + 1}", list: "${input.items}"}}
    hooks: {prep: "return {values: {n: params.values.n * 2, list: params.values.list}};"}
"""
    flow = compile_flow(load_flow(text), scripts=sandbox)
    assert (await flow.run(INPUT)).output == {"n": 6, "list": [1, 2]}
    assert wire.take() == [b"f"]
    # An object operand takes `input.n + 1` out of the native subset: then it joins.
    assert (await flow.run({"n": [5], "items": []})).output == {"n": 102, "list": []}
    assert wire.take() == [b"p"]


async def test_a_joined_call_over_its_time_limit_is_made_again_as_two_calls(
    wire: Wire, sandbox: Sandbox
) -> None:
    text = """\
metadata: {name: slow}
nodes:
  calc:
    type: set
    params: {values: {n: "${(0, input.n) + 1}"}}
    hooks: {prep: "while (true) {}"}
"""
    flow = compile_flow(load_flow(text), scripts=sandbox)
    ended, _ = await outcome(flow, INPUT)
    assert ended[:2] == ("failed", "ScriptTimeout")  # the hook's own timeout, as before
    assert wire.take() == [b"p", b"e", b"f"]


async def test_a_batch_node_joins_its_prep_hook_per_item(sandbox: Sandbox, wire: Wire) -> None:
    text = """\
metadata: {name: batch}
nodes:
  calc:
    type: set
    params: {values: {v: "${[item].concat(index)}"}}
    batch: {items: [a, b, c]}
    hooks:
      prep: |
        console.log(item, index, params.values.v);
        shared.last = item;
        if (item === "c") throw new Error("no c");
        return {values: {v: params.values.v.join('-'), at: index}};
"""
    joined = await outcome(compile_flow(load_flow(text), scripts=sandbox), INPUT)
    assert wire.take() == [b"p", b"p", b"p"]
    two = await outcome(compile_flow(load_flow(text), scripts=TwoCalls(sandbox)), INPUT)
    assert wire.take() == [b"e", b"f", b"e", b"f", b"e", b"f"]
    assert joined == two
    assert joined == (
        ("failed", "ScriptError", "Error: no c (line 3, column 25)"),
        [
            ("calc", "info", 'a 0 ["a",0]'),
            ("calc", "info", 'b 1 ["b",1]'),
            ("calc", "info", 'c 2 ["c",2]'),
        ],
    )
    ok = text.replace('if (item === "c") throw new Error("no c");', "")
    joined = await outcome(compile_flow(load_flow(ok), scripts=sandbox), INPUT)
    two = await outcome(compile_flow(load_flow(ok), scripts=TwoCalls(sandbox)), INPUT)
    assert joined == two
    assert joined[0][1] == [{"v": "a-0", "at": 0}, {"v": "b-1", "at": 1}, {"v": "c-2", "at": 2}]
    assert joined[0][2]["last"] == "c"


async def test_a_joined_reply_over_the_size_limit_is_made_again_as_two_calls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = """\
metadata: {name: big}
nodes:
  calc:
    type: set
    params: {values: {text: "${(0, input.text)}"}}
    hooks: {prep: "return {values: {text: params.values.text + '!'}};"}
"""
    # The expression's value and the hook's are each under the limit, together over it.
    async with Sandbox(workers=1, max_result_bytes=3000) as small:
        wire = Wire(small, monkeypatch)
        result = await compile_flow(load_flow(text), scripts=small).run({"text": "x" * 1800})
        assert result.output == {"text": "x" * 1800 + "!"}
        assert wire.take() == [b"p", b"e", b"f"]


async def test_an_expression_that_does_not_compile_fails_as_with_two_calls(
    sandbox: Sandbox, wire: Wire
) -> None:
    # Loaded without the sandbox, so nothing checked the syntax before the run.
    joined, two = await both(
        sandbox,
        wire,
        "return params;",
        INPUT,
        text=flow_text("return params;").replace("(0, input.n) + 1", "(0, input.n) +* 1"),
    )
    assert joined == two
    (ended, kind, message), _ = joined
    assert (ended, kind) == ("failed", "ExpressionError")
    assert "expression ${(0, input.n) +* 1} failed: SyntaxError" in message
    assert "(line 1, column 15)" in message


RESOLVED = {"n": 3, "doubled": [2, 4], "again": [[2, 4], 2, "text 2"], "label": "static"}


@pytest.mark.parametrize(
    ("given", "output"),
    [({"values": {"given": True}}, {"given": True}), ({"extra": [1]}, RESOLVED)],
    ids=["replacing the param the values go to", "beside it"],
)
async def test_an_agents_tool_arguments_over_the_params_give_what_two_calls_give(
    sandbox: Sandbox, wire: Wire, given: dict[str, Any], output: dict[str, Any]
) -> None:
    text = flow_text("return {...params, seen: params.values};")
    outcomes = []
    for host in (sandbox, TwoCalls(sandbox)):
        flow = compile_flow(load_flow(text), scripts=host)
        scoped = {TOOL_ARGUMENTS: (flow.engine_flow.nodes()["calc"], given)}
        outcomes.append(await outcome(flow, INPUT, scoped=scoped))
    assert outcomes[0] == outcomes[1]
    assert wire.take()[0] == b"p"
    assert outcomes[0][0][1] == output
