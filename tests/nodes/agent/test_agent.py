"""The ``agent`` node end to end (load_flow + compile_flow + run) against the scripted
OpenAI- and Anthropic-compatible servers, with real tools: JavaScript functions in the
sandbox, sub-flow files, and an MCP server built with the SDK (over stdio); tool failures
told to the model, the step bound, usage metered, events for every step, cancellation."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from flowrunner.definition import compile_flow, load_flow
from flowrunner.engine import NodeEvent, RunResult
from flowrunner.errors import DefinitionError, NodeFailed
from flowrunner.executions.llm_usage import RunUsage
from flowrunner.executions.run_kv import AccountKV
from flowrunner.nodes.agent import AgentStepsExhausted
from flowrunner.nodes.agent.memory import NAMESPACE as MEMORY
from flowrunner.nodes.llm.errors import LLMBudgetExceeded
from flowrunner.nodes.llm.usage import USAGE_METER
from flowrunner.nodes.store import RUN_KV
from flowrunner.scripting import Sandbox
from flowrunner.storage.memory import MemoryStore
from tests.conftest import HANG_GUARD
from tests.llm_servers.server import ModelServer
from tests.nodes.llm.conftest import API_KEY, base_url
from tests.nodes.mcp.conftest import SCRIPT, process_gone

PROVIDERS = ["openai", "anthropic"]
ADD = (
    "{name: add, description: Add two numbers, script: 'return args.a + args.b', "
    "parameters: {type: object, properties: {a: {type: integer}, b: {type: integer}}}}"
)
SHOUT = (
    "{name: shout, script: 'return args.text.toUpperCase()', "
    "parameters: {type: object, properties: {text: {type: string}}}}"
)
BOOM = (
    "{name: boom, script: 'throw new Error(\"the tool broke\")', "
    "parameters: {type: object, properties: {}}}"
)
MCP = f'{{mcp: {{command: "{sys.executable}", args: ["{SCRIPT}"]}}, only: [add, echo, pid]}}'


def agent(provider: str, url: str, model: str, tools: list[str], extra: str = "") -> str:
    listed = "".join(f"\n        - {t}" for t in tools)
    return f"""metadata: {{name: t}}
nodes:
  think:
    type: agent
    params:
      provider: {provider}
      model: {model}
      base_url: {url}
      api_key: ${{secrets.KEY}}
      prompt: ${{input.question}}
      tools:{listed or " []"}
{extra}"""


async def run(
    sandbox: Sandbox,
    text: str,
    question: str = "hello agent",
    base: Path | None = None,
    **kwargs: Any,
) -> RunResult:
    kwargs.setdefault("secrets", {"KEY": API_KEY})
    definition = load_flow(text, scripts=sandbox, base_path=base)
    compiled = compile_flow(definition, scripts=sandbox, base_path=base)
    return await compiled.run({"question": question}, **kwargs)


def agent_events(events: list[NodeEvent]) -> list[tuple[str, Any]]:
    return [
        (e.fields["event"], e.fields.get("tool"))
        for e in events
        if e.kind == "log" and e.fields and "event" in e.fields
    ]


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("stream", [False, True])
async def test_the_agent_calls_a_tool_and_answers_with_its_result(
    models: ModelServer, sandbox: Sandbox, provider: str, stream: bool
) -> None:
    extra = f"      stream: {str(stream).lower()}\n"
    text = agent(provider, base_url(models, provider), "scripted-agent", [ADD], extra)
    result = await run(sandbox, text)
    out = result.output
    assert out["response"] == "Results: 5"
    assert out["steps"] == 2
    assert out["finish_reason"] == "stop"
    assert out["model"] == "scripted-agent"
    assert out["intermediate_results"] == [
        {"step": 1, "tool": "add", "tool_call_id": "call_1", "arguments": {"a": 2, "b": 3},
         "result": 5}
    ]  # fmt: skip
    assert [m["role"] for m in out["conversation"]] == ["user", "assistant", "tool", "assistant"]
    assert out["conversation"][2]["content"] == "5"
    usage = out["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert len(models.state.requests) == 2
    assert usage["prompt_tokens"] > 0
    assert models.state.keys == [API_KEY, API_KEY]
    assert API_KEY not in json.dumps(out)
    # The tool definition reached the model in the provider's own shape.
    sent = models.state.requests[0]["tools"][0]
    name = sent["name"] if provider == "anthropic" else sent["function"]["name"]
    assert name == "add"


async def test_every_step_is_an_event_and_parallel_calls_run_at_once(
    models: ModelServer, sandbox: Sandbox
) -> None:
    events: list[NodeEvent] = []
    text = agent("openai", models.openai_url, "scripted-agent", [ADD, SHOUT])
    result = await run(sandbox, text, "quiet please", observer=events.append)
    assert result.output["response"] == "Results: 5 | QUIET PLEASE"
    # Both calls started before either returned: they ran concurrently.
    assert agent_events(events) == [
        ("agent.model_call", None),
        ("agent.tool_call", "add"),
        ("agent.tool_call", "shout"),
        ("agent.tool_result", "add"),
        ("agent.tool_result", "shout"),
        ("agent.model_call", None),
    ]


async def test_max_parallel_tools_one_runs_the_calls_in_turn(
    models: ModelServer, sandbox: Sandbox
) -> None:
    events: list[NodeEvent] = []
    extra = "      max_parallel_tools: 1\n"
    text = agent("openai", models.openai_url, "scripted-agent", [ADD, SHOUT], extra)
    await run(sandbox, text, observer=events.append)
    assert [kind for kind, _ in agent_events(events)][1:5] == [
        "agent.tool_call",
        "agent.tool_result",
        "agent.tool_call",
        "agent.tool_result",
    ]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_an_mcp_servers_tools_are_offered_and_called_over_one_session(
    models: ModelServer, sandbox: Sandbox, provider: str
) -> None:
    text = agent(provider, base_url(models, provider), "scripted-agent-steps", [MCP])
    result = await run(sandbox, text, "hi")
    out = result.output
    tools = [r["tool"] for r in out["intermediate_results"]]
    assert tools == ["add", "echo", "pid"]  # the server's order, only those named
    add, echo, pid = (r["result"] for r in out["intermediate_results"])
    assert add == {"result": 5}
    assert echo == {"result": "hi"}
    # Three steps, one server process: the run's session, ended with the run.
    assert process_gone(pid["result"])
    assert out["steps"] == 4
    offered = models.state.requests[0]["tools"]
    assert len(offered) == 3


async def test_a_sub_flow_file_is_a_tool_its_input_the_arguments(
    models: ModelServer, sandbox: Sandbox, tmp_path: Path
) -> None:
    (tmp_path / "lookup.yaml").write_text(
        "metadata: {name: lookup}\n"
        "nodes:\n"
        "  found:\n"
        "    type: set\n"
        "    params: {values: {city: '${input.city}', found: true}}\n"
    )
    tool = (
        "{name: lookup, description: Find a city, path: lookup.yaml, "
        "parameters: {type: object, properties: {city: {type: string}}}}"
    )
    events: list[NodeEvent] = []
    text = agent("openai", models.openai_url, "scripted-agent", [tool])
    result = await run(sandbox, text, "Lyon", base=tmp_path, observer=events.append)
    assert result.output["intermediate_results"][0]["result"] == {"city": "Lyon", "found": True}
    assert result.output["response"] == 'Results: {"city": "Lyon", "found": true}'
    # The sub-flow's node ran nested under the agent.
    nested = [e for e in events if e.node_id == "found" and e.kind == "finished"]
    assert [e.flow_path for e in nested] == [("think",)]


async def test_a_failing_tool_is_told_to_the_model_not_a_run_failure(
    models: ModelServer, sandbox: Sandbox
) -> None:
    events: list[NodeEvent] = []
    text = agent("anthropic", models.anthropic_url, "scripted-agent", [BOOM])
    result = await run(sandbox, text, observer=events.append)
    out = result.output
    record = out["intermediate_results"][0]
    assert "the tool broke" in record["error"]
    assert "result" not in record
    assert out["response"].startswith("Results: Error: ")
    assert "the tool broke" in out["response"]
    failed = [
        e for e in events if e.kind == "log" and (e.fields or {}).get("event") == "agent.tool_error"
    ]
    assert len(failed) == 1
    assert failed[0].level == "warning"


async def test_an_unknown_tool_name_is_told_to_the_model(
    models: ModelServer, sandbox: Sandbox
) -> None:
    text = agent("openai", models.openai_url, "scripted-agent-unknown", [ADD])
    out = (await run(sandbox, text)).output
    assert out["intermediate_results"][0]["tool"] == "nope"
    assert "there is no tool named 'nope' (tools: add)" in out["response"]


async def test_max_steps_exhausted_fails_with_the_conversation_so_far(
    models: ModelServer, sandbox: Sandbox
) -> None:
    text = agent("openai", models.openai_url, "scripted-agent-loop", [ADD], "      max_steps: 3\n")
    with pytest.raises(NodeFailed) as info:
        await run(sandbox, text)
    cause = info.value.cause
    assert isinstance(cause, AgentStepsExhausted)
    assert cause.code == "agent_max_steps"
    assert "max_steps (3)" in str(cause)
    assert len(models.state.requests) == 3  # no fourth call
    conversation = cause.context["conversation"]
    assert [m["role"] for m in conversation] == ["user"] + ["assistant", "tool"] * 3


async def test_usage_is_metered_per_call_and_the_budget_stops_the_loop(
    models: ModelServer, sandbox: Sandbox
) -> None:
    store = MemoryStore()
    meter = RunUsage(store.kv, "acct", budget=None)
    text = agent("openai", models.openai_url, "scripted-agent", [ADD])
    out = (await run(sandbox, text, scoped={USAGE_METER: meter})).output
    snapshot = meter.snapshot()
    assert snapshot["calls"] == 2
    assert snapshot["nodes"]["think"]["total_tokens"] == out["usage"]["total_tokens"]
    assert await meter.month_total() == out["usage"]["total_tokens"]
    # A budget that holds the first step's call exactly: the first step runs, the second
    # does not fit in what is left; the run fails clearly, the month never over its budget.
    holds: list[int] = []
    recording = Holds(store.kv, "other", budget=10**6, holds=holds)
    await run(sandbox, text, scoped={USAGE_METER: recording})
    calls = len(models.state.requests)
    tight = RunUsage(store.kv, "tight", budget=holds[0])
    with pytest.raises(NodeFailed) as info:
        await run(sandbox, text, scoped={USAGE_METER: tight})
    assert isinstance(info.value.cause, LLMBudgetExceeded)
    assert "node 'think'" in str(info.value.cause)
    assert "has too little left for this call" in str(info.value.cause)
    assert len(models.state.requests) == calls + 1
    assert tight.snapshot()["calls"] == 1
    assert await tight.month_total() == tight.snapshot()["total_tokens"] <= holds[0]


class Holds(RunUsage):
    """A meter that records what each call holds."""

    def __init__(self, *args: Any, holds: list[int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.holds = holds

    async def reserve(self, node_id: str, tokens: int) -> int:
        self.holds.append(tokens)
        return await super().reserve(node_id, tokens)


async def test_cancelling_the_run_mid_call_closes_the_model_connection(
    models: ModelServer, sandbox: Sandbox
) -> None:
    text = agent("openai", models.openai_url, "scripted-stream-gate", [ADD], "      stream: true\n")
    task = asyncio.create_task(run(sandbox, text))
    async with asyncio.timeout(HANG_GUARD):
        while not models.state.streaming.is_set():  # noqa: ASYNC110 - a thread's Event
            await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with asyncio.timeout(HANG_GUARD):
        while not models.state.disconnected.is_set():  # noqa: ASYNC110 - a thread's Event
            await asyncio.sleep(0.02)


@pytest.mark.parametrize(
    ("tool", "message"),
    [
        ("{name: x}", "a tool is one of mcp, script, path, flow or node"),
        ("{script: 'return 1'}", "a script tool needs a name"),
        ("{name: x, script: 'return 1', path: a.yaml}", "a tool is one of"),
        ("{mcp: {url: 'http://h'}, name: x}", "name is for script and flow tools"),
        ("{name: x, script: 'return 1', only: [a]}", "only is for mcp tools"),
        ("{name: 'bad name', script: 'return 1'}", "does not match"),
        ("{name: x, path: missing.yaml}", "sub-flow file 'missing.yaml' not found"),
        ("{name: x, flow: '${input.f}'}", "flow must be written out"),
    ],
)
def test_bad_tools_are_refused_when_the_flow_loads(tmp_path: Path, tool: str, message: str) -> None:
    text = agent("openai", "http://127.0.0.1:1/v1", "m", [tool])
    with pytest.raises(DefinitionError) as info:
        load_flow(text, base_path=tmp_path)
    assert message in str(info.value)


def test_two_tools_with_one_name_are_refused_when_the_flow_loads() -> None:
    text = agent("openai", "http://127.0.0.1:1/v1", "m", [ADD, ADD])
    with pytest.raises(DefinitionError) as info:
        load_flow(text)
    assert "tool 'add' is defined twice" in str(info.value)


async def test_memory_key_keeps_the_conversation_across_runs_trimmed_and_masked(
    models: ModelServer, sandbox: Sandbox
) -> None:
    store = MemoryStore()
    await store.connect()
    kv = AccountKV(store.kv, "acct")
    secrets = {"KEY": API_KEY, "PIN": "4711-secret"}
    extra = "      system: Be brief.\n      memory_key: chat-1\n"
    text = agent("openai", models.openai_url, "llama3.2", [], extra)
    first = await run(sandbox, text, "my pin is 4711-secret", scoped={RUN_KV: kv}, secrets=secrets)
    assert first.output["response"] == "echo: my pin is 4711-secret"
    again = "and again " * 20  # long: the three turns will not fit 100 tokens
    await run(sandbox, text, again, scoped={RUN_KV: kv}, secrets=secrets)
    # The second run's call carried the first run's turn, between its system message and
    # its own prompt (the system message is not kept twice).
    sent = models.state.requests[1]["messages"]
    assert [(m["role"], m["content"]) for m in sent] == [
        ("system", "Be brief."),
        ("user", "my pin is ***"),
        ("assistant", "echo: my pin is ***"),
        ("user", again),
    ]
    kept = (await kv.get(MEMORY, "chat-1")).value
    assert [m["role"] for m in kept] == ["user", "assistant"] * 2
    assert "4711-secret" not in json.dumps(kept)
    # A small budget keeps only the newest whole turn.
    small = text.replace("memory_key: chat-1", "memory_key: chat-1\n      memory_tokens: 100")
    await run(sandbox, small, "third", scoped={RUN_KV: kv}, secrets=secrets)
    kept = (await kv.get(MEMORY, "chat-1")).value
    assert [(m["role"], m["content"]) for m in kept] == [
        ("user", "third"),
        ("assistant", "echo: third"),
    ]


async def test_memory_key_without_a_store_fails_clearly(
    models: ModelServer, sandbox: Sandbox
) -> None:
    text = agent("openai", models.openai_url, "llama3.2", [], "      memory_key: k\n")
    with pytest.raises(NodeFailed) as info:
        await run(sandbox, text)
    assert "param memory_key: this run has no key-value store" in str(info.value.cause)
    assert models.state.requests == []


def test_a_script_tools_syntax_error_is_refused_at_its_line_when_the_flow_loads(
    sandbox: Sandbox,
) -> None:
    broken = "{name: bad, script: 'return args.a +'}"
    text = agent("openai", "http://127.0.0.1:1/v1", "m", [ADD, broken])
    with pytest.raises(DefinitionError) as info:
        load_flow(text, scripts=sandbox)
    problem = info.value.problems[0]
    assert problem.path == "nodes.think.params.tools[1].script"
    assert problem.line == text.splitlines().index(f"        - {broken}") + 1


CITIES = """  population:
    type: store
    description: The population of a city
    params: {operation: get, namespace: cities, key: nowhere}
"""
REFUSE = "  refuse:\n    type: fail\n"
POPULATION = "{node: population, params: [key]}"


async def cities() -> AccountKV:
    store = MemoryStore()
    await store.connect()
    kv = AccountKV(store.kv, "acct")
    await kv.put("cities", "Lyon", {"population": 522000})
    return kv


async def test_a_node_of_the_flow_is_a_tool_run_in_parallel_with_others_its_failure_told(
    models: ModelServer, sandbox: Sandbox
) -> None:
    events: list[NodeEvent] = []
    text = agent("openai", models.openai_url, "scripted-agent", [ADD, POPULATION, "{node: refuse}"])
    kv = await cities()
    flow = text + CITIES + REFUSE
    result = await run(sandbox, flow, "Lyon", scoped={RUN_KV: kv}, observer=events.append)
    out = result.output
    # The model's key was laid over the node's configured one; the failing node's message
    # (the model filled it too) went back to the model as that call's result.
    assert out["response"] == 'Results: 5 | {"population": 522000} | Error: Lyon'
    records = out["intermediate_results"]
    assert [r["tool"] for r in records] == ["add", "population", "refuse"]
    assert records[1]["arguments"] == {"key": "Lyon"}
    assert records[1]["result"] == {"population": 522000}
    assert records[2]["error"] == "Lyon"
    # The calls ran at once: the last one started while the first (the JavaScript tool,
    # in the sandbox) was still running.
    steps = agent_events(events)
    assert [kind for kind, _ in steps[1:3]] == ["agent.tool_call"] * 2
    assert steps.index(("agent.tool_call", "refuse")) < steps.index(("agent.tool_result", "add"))
    assert steps[-1] == ("agent.model_call", None)
    # Each tool node ran as a step of the run, nested under the agent, like a sub-flow's.
    nested = [(e.node_id, e.kind, e.flow_path) for e in events if e.node_id != "think"]
    assert sorted(nested) == [
        ("population", "finished", ("think",)),
        ("population", "started", ("think",)),
        ("refuse", "failed", ("think",)),
        ("refuse", "started", ("think",)),
    ]
    # Offered with its own description and its type's schema of the params it may fill;
    # the node's params it did not offer stay as configured, and are not shown.
    offered = {t["function"]["name"]: t["function"] for t in models.state.requests[0]["tools"]}
    assert offered["population"]["description"] == "The population of a city"
    assert offered["population"]["parameters"]["properties"].keys() == {"key"}
    assert offered["population"]["parameters"]["additionalProperties"] is False
    assert offered["refuse"]["parameters"]["properties"].keys() == {"message"}
    # The tool nodes ran only as tools: the run ended at the agent.
    assert result.last_node_id == "think"
    assert set(result.results) == {"think"}


async def test_arguments_outside_a_node_tools_schema_are_told_to_the_model(
    models: ModelServer, sandbox: Sandbox
) -> None:
    # The model fills a string with the question; a store namespace is at most 255
    # characters, so the call is refused with the reason and the node never runs.
    events: list[NodeEvent] = []
    tool = "{node: population, name: census, params: [namespace]}"
    text = agent("openai", models.openai_url, "scripted-agent", [tool])
    kv = await cities()
    long = "x" * 300
    result = await run(sandbox, text + CITIES, long, scoped={RUN_KV: kv}, observer=events.append)
    record = result.output["intermediate_results"][0]
    assert record["tool"] == "census"
    assert record["error"].startswith("invalid arguments at namespace: ")
    assert "is too long" in record["error"]
    assert [e for e in events if e.node_id == "population"] == []


def test_a_tool_node_is_neither_a_start_candidate_nor_unreachable() -> None:
    text = agent("openai", "http://127.0.0.1:1/v1", "m", [POPULATION]) + CITIES
    definition = load_flow(text)
    assert definition.start == "think"
    assert [w.message for w in definition.warnings if "population" in w.message] == []


@pytest.mark.parametrize(
    ("tool", "nodes", "message"),
    [
        ("{node: populaton}", CITIES, "tool node 'populaton' does not exist — did you mean"),
        ("{node: think}", "", "node 'think' cannot be its own tool"),
        (
            "{node: population}",
            CITIES.replace("key: nowhere}", "key: nowhere}\n    next: {default: refuse}") + REFUSE,
            "it runs when the model calls it",
        ),
        ("{node: population, params: [kee]}", CITIES, "a 'store' node has no param 'kee'"),
        (
            "{node: shape, params: [script]}",
            "  shape:\n    type: transform\n    params: {script: 'return 1'}\n",
            "param 'script' of 'shape' is code",
        ),
        ("{node: population, parameters: {}}", CITIES, "parameters is not for node tools"),
        ("{node: 'a.b'}", "  a.b:\n    type: fail\n", "give the tool a name"),
        ("{node: population, name: add, params: []}", CITIES, "tool 'add' is defined twice"),
    ],
)
def test_bad_node_tools_are_refused_when_the_flow_loads(
    tool: str, nodes: str, message: str
) -> None:
    text = agent("openai", "http://127.0.0.1:1/v1", "m", [ADD, tool]) + nodes
    with pytest.raises(DefinitionError) as info:
        load_flow(text)
    assert any(message in p.message for p in info.value.problems), info.value.problems


def test_a_route_into_a_tool_node_and_tools_in_a_circle_are_refused() -> None:
    routed = agent(
        "openai", "http://127.0.0.1:1/v1", "m", [POPULATION], "    next: {default: population}\n"
    )
    with pytest.raises(DefinitionError) as info:
        load_flow(routed + CITIES)
    messages = [p.message for p in info.value.problems]
    assert any("leads to 'population', a tool of 'think'" in m for m in messages), messages
    inner = (
        "  helper:\n    type: agent\n    params: {model: m, base_url: 'http://127.0.0.1:1/v1', "
        "prompt: x, tools: [{node: think}]}\n"
    )
    circle = agent("openai", "http://127.0.0.1:1/v1", "m", ["{node: helper}"]) + inner
    with pytest.raises(DefinitionError) as info:
        load_flow(circle)
    messages = [p.message for p in info.value.problems]
    assert any("node tools go round in a circle: " in m for m in messages), messages
