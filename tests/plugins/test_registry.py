from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from flowrunner.errors import PluginError
from flowrunner.nodes import DefinedNode, DefinedNodeType
from flowrunner.plugins import NodeType, NodeTypeRegistry, builtin_registry
from flowrunner.plugins.registry import _validator


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


def test_the_builtin_params_schemas_are_valid_and_checked_at_first_use() -> None:
    # Checked against the meta-schema when a flow first uses the type, not when the registry
    # is built (at every server start): that is ~0.2 s of CPU for ~30 schemas.
    _validator.cache_clear()
    registry = builtin_registry()
    assert _validator.cache_info().misses == 0
    for name in registry.canonical_names():
        validator = registry.params_validator(name)
        type(validator).check_schema(dict(validator.schema))  # type: ignore[arg-type]
        assert registry.params_validator(name) is validator
    assert _validator.cache_info().misses > 20


def test_a_schema_registered_unchecked_is_refused_at_first_use() -> None:
    registry = NodeTypeRegistry()
    registry.register(make("bad", {"type": "no-such-type"}), checked=False)
    with pytest.raises(jsonschema.SchemaError):
        registry.params_validator("bad")
