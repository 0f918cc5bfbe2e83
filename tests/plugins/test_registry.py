from __future__ import annotations

from typing import Any

import pytest

from flowrunner.errors import PluginError
from flowrunner.nodes import DefinedNode, DefinedNodeType
from flowrunner.plugins import NodeType, NodeTypeRegistry, builtin_registry


def make(name: str, schema: dict[str, Any] | None = None) -> DefinedNodeType:
    return DefinedNodeType(name, f"{name} node", DefinedNode, schema or {"type": "object"})


def test_builtin_registry_holds_the_control_nodes_and_aliases() -> None:
    registry = builtin_registry()
    assert {"delay", "wait", "log", "set", "switch", "fail", "flow"} <= set(registry.names())
    assert registry.get("wait") is registry.get("delay")
    assert isinstance(registry.get("log"), NodeType)


def test_each_call_builds_a_fresh_registry() -> None:
    first = builtin_registry()
    first.register(make("extra"))
    assert "extra" not in builtin_registry()


def test_register_get_unregister() -> None:
    registry = NodeTypeRegistry()
    node_type = make("http.request")
    registry.register(node_type, aliases=["http"])
    assert registry.get("http.request") is node_type
    assert registry.names() == ["http", "http.request"]
    registry.unregister("http")
    assert "http" not in registry
    assert len(registry) == 1


def test_unknown_names_suggest_the_closest_registered_one() -> None:
    registry = NodeTypeRegistry([make("http.request"), make("email.send")])
    with pytest.raises(PluginError) as info:
        registry.get("http.reqest")
    assert str(info.value) == "unknown node type 'http.reqest' — did you mean 'http.request'?"
    assert registry.find("nothing") is None
    with pytest.raises(PluginError, match="unknown node type"):
        registry.unregister("nothing")


def test_a_name_is_registered_once_unless_replaced() -> None:
    registry = NodeTypeRegistry([make("a")])
    with pytest.raises(PluginError, match="already registered"):
        registry.register(make("a"))
    replacement = make("a")
    registry.register(replacement, replace=True)
    assert registry.get("a") is replacement


def test_invalid_node_types_are_refused() -> None:
    registry = NodeTypeRegistry()
    with pytest.raises(PluginError, match="missing"):
        registry.register(object())  # type: ignore[arg-type]
    with pytest.raises(PluginError, match="invalid params_schema"):
        registry.register(make("bad", {"type": "no-such-type"}))
    with pytest.raises(PluginError, match="non-empty"):
        registry.register(make(""))
