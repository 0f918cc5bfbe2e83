"""The plugin contract is checked whole, before any type is registered."""

from __future__ import annotations

import pytest

from flowrunner.errors import PluginError
from flowrunner.plugins import FunctionNodeType, Plugin
from flowrunner.plugins.contract import check_plugin, type_actions


def echo(call: object) -> str:
    return "echo"


def typed(name: str, **kw: object) -> FunctionNodeType:
    return FunctionNodeType(name=name, description="d", work=echo, **kw)  # type: ignore[arg-type]


def test_a_valid_plugin_passes_and_namespaced_names_are_allowed() -> None:
    plugin = Plugin("acme", "1.0", [typed("acme.crm.lookup", actions=frozenset({"missing"}))])
    assert check_plugin(plugin, "here") is plugin
    assert type_actions(plugin.node_types[0]) == ["missing"]


def test_every_problem_is_named_at_once() -> None:
    plugin = Plugin(
        "bad name!",
        "",
        [
            typed("ok"),
            typed("ok"),
            typed("no spaces allowed"),
            42,  # type: ignore[list-item]
            typed("bad.schema", params_schema={"type": "nope"}),
        ],
    )
    with pytest.raises(PluginError) as info:
        check_plugin(plugin, "plugins/bad.py")
    message = str(info.value)
    assert message.startswith("plugins/bad.py: plugin 'bad name!' is invalid: ")
    for part in (
        "name 'bad name!' is not a dotted name",
        "version must be a non-empty string",
        "node_types[1]: 'ok' is declared twice",
        "node_types[2]: name 'no spaces allowed' is not a dotted name",
        "node_types[3]: 42 is not a node type",
        "node type 'bad.schema': invalid params_schema: 'nope' is not valid",
    ):
        assert part in message


def test_a_plugin_without_types_is_refused() -> None:
    with pytest.raises(PluginError, match="non-empty list"):
        check_plugin(Plugin("empty", "1", []), "x")
