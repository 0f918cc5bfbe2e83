"""``wait_for`` outside a server, and what its definition may say (the durable paths run
through a real server: tests/e2e/test_waiting.py)."""

from __future__ import annotations

import pytest

from flowrunner.definition import compile_flow, load_flow
from flowrunner.errors import DefinitionError, NodeFailed

APPROVE = """\
metadata: {name: w}
nodes:
  approve:
    type: wait_for
    params: {name: decision, timeout: 1h, schema: {type: object}}
    next: {default: yes, timeout: late}
  "yes": {type: log, params: {message: ok}}
  late: {type: log, params: {message: late}}
"""


async def test_wait_for_without_a_server_fails_saying_where_it_can_run() -> None:
    flow = compile_flow(load_flow(APPROVE))
    with pytest.raises(NodeFailed, match="runs only on a server, as a top-level node"):
        await flow.run({})


def test_wait_for_declares_its_timeout_edge_and_checks_its_schema() -> None:
    assert load_flow(APPROVE).nodes["approve"].type == "wait_for"
    bad = APPROVE.replace("schema: {type: object}", "schema: {type: objekt}")
    with pytest.raises(DefinitionError, match="not a valid JSON Schema"):
        load_flow(bad)
    unnamed = APPROVE.replace("name: decision, ", "")
    with pytest.raises(DefinitionError, match="name"):
        load_flow(unnamed)
    spaced = APPROVE.replace("name: decision", "name: 'two words'")
    with pytest.raises(DefinitionError):
        load_flow(spaced)
