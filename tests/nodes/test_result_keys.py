"""The original's ``shared["<kind>_result"]`` keys, set beside ``shared.result`` after a node."""

from __future__ import annotations

from typing import Any

import pytest

from flowrunner.definition import compile_flow, load_flow
from flowrunner.nodes import Call, DefinedNode, DefinedNodeType
from flowrunner.nodes.result_keys import result_key
from flowrunner.plugins import builtin_registry


class Echo(DefinedNode):
    """Stands in for the original's HTTP/LLM/email/store nodes: outputs its params."""

    __slots__ = ()

    async def work(self, call: Call) -> Any:
        return {"params": call.params, "tool_calls": [{"function": {"arguments": '{"q": 1}'}}]}


def registry() -> Any:
    reg = builtin_registry()
    for name in ("http.request", "llm.chat", "email.send", "store.put"):
        # Stand-ins replace the real built-ins of those names: no network, no mail server.
        reg.register(DefinedNodeType(name, "test double", Echo, {"type": "object"}), replace=True)
    return reg


@pytest.mark.parametrize(
    ("node_type", "params", "key"),
    [
        ("http.request", {"url": "https://x.test"}, "http_result"),
        ("anything", {"url": "https://x.test", "model": "m"}, "http_result"),
        ("mcp", {"url": "https://x.test/mcp", "tool": "t"}, "mcp_result"),
        ("mcp", {"command": "server", "tool": "t"}, "mcp_result"),
        ("llm.chat", {"model": "gpt"}, "llm_result"),
        ("email.send", {"to": "a@b.test"}, "email_result"),
        ("email", {}, "email_result"),
        ("store.put", {"key": "k"}, "store_result"),
        ("wait", {"type": "timer"}, "timer_result"),
        ("delay", {"type": "${input.kind}"}, None),
        ("set", {"type": "x"}, None),
        ("log", {"message": "m"}, None),
    ],
)
def test_the_kind_key_follows_the_originals_rule(
    node_type: str, params: dict[str, Any], key: str | None
) -> None:
    assert result_key(node_type, params) == key


async def test_an_llm_nodes_output_is_readable_as_shared_llm_result() -> None:
    definition = load_flow(
        """\
metadata: {name: Keys}
nodes:
  ask:
    type: llm.chat
    params: {model: gpt-test}
    next: {default: use}
  use:
    type: set
    params:
      values: {args: "${shared.llm_result.tool_calls[0].function.arguments}"}
""",
        registry=registry(),
    )
    result = await compile_flow(definition, registry=registry()).run({})
    assert result.output == {"args": '{"q": 1}'}
    # References to the output, not copies: no extra state per key in memory.
    assert result.shared["llm_result"] is result.results["ask"]
    assert result.shared["result"] == {"args": '{"q": 1}'}


async def test_each_kind_key_holds_the_last_output_of_its_kind() -> None:
    definition = load_flow(
        """\
metadata: {name: Keys}
nodes:
  fetch: {type: http.request, params: {url: "https://a.test"}, next: {default: mail}}
  mail: {type: email.send, params: {to: ops@x.test}, next: {default: keep}}
  keep: {type: store.put, params: {key: k}, next: {default: pause}}
  pause: {type: wait, params: {type: cooldown, duration: 0}}
""",
        registry=registry(),
    )
    result = await compile_flow(definition, registry=registry()).run({"start": 1})
    shared = result.shared
    assert shared["http_result"]["params"] == {"url": "https://a.test"}
    assert shared["email_result"]["params"] == {"to": "ops@x.test"}
    assert shared["store_result"]["params"] == {"key": "k"}
    assert shared["cooldown_result"] is shared["result"]
    assert shared["start"] == 1


async def test_a_stored_checkpoint_holds_a_big_output_once_for_every_key() -> None:
    from flowrunner import jsontext
    from flowrunner.executions.checkpoint_refs import VALUES, Packer

    class Big(DefinedNode):
        __slots__ = ()

        async def work(self, call: Call) -> Any:
            return {"rows": [{"id": i, "text": f"row {i}"} for i in range(300)]}

    reg = builtin_registry()
    reg.register(DefinedNodeType("llm.big", "test double", Big, {"type": "object"}))
    definition = load_flow(
        "metadata: {name: Big}\nnodes:\n  ask: {type: llm.big, params: {model: m}}\n",
        registry=reg,
    )
    result = await compile_flow(definition, registry=reg).run({})
    assert result.shared["llm_result"] is result.shared["result"] is result.results["ask"]
    shared, results = Packer({}).pack(result.shared, result.results)
    # shared.result, shared.llm_result and results.ask: one stored copy.
    assert len(results[VALUES]) == 1
    assert len(jsontext.dumps([shared, results])) < 1.2 * len(jsontext.dumps(result.output))
