from __future__ import annotations

import textwrap
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from flowrunner.errors import PluginError
from flowrunner.plugins import GROUP, builtin_registry, load_entry_points

PLUGIN = """
from flowrunner.nodes import DefinedNode, DefinedNodeType

class Shout(DefinedNode):
    async def work(self, call):
        return str(call.params["text"]).upper()

SHOUT = DefinedNodeType("shout", "Upper-case a text.", Shout, {"type": "object"})
WHISPER = DefinedNodeType("whisper", "Lower-case.", Shout, {"type": "object"})
BOTH = [SHOUT, WHISPER]

def factory():
    return DefinedNodeType("made", "From a factory.", Shout, {"type": "object"})

def broken_factory():
    raise RuntimeError("no config")

NOT_A_TYPE = 42
"""


@pytest.fixture
def plugin_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"fr_test_plugin_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(PLUGIN))
    (tmp_path / "fr_broken_plugin.py").write_text("raise ImportError('needs libfoo')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def point(name: str, value: str) -> EntryPoint:
    return EntryPoint(name, value, GROUP)


def test_entry_points_may_name_a_type_a_list_or_a_factory(plugin_module: str) -> None:
    registry = builtin_registry()
    errors = load_entry_points(
        registry,
        points=[
            point("one", f"{plugin_module}:SHOUT"),
            point("many", f"{plugin_module}:BOTH"),
            point("made", f"{plugin_module}:factory"),
        ],
    )
    # SHOUT is in both "one" and "many": the second registration is the broken one.
    assert [str(e) for e in errors] == [
        f"plugin 'many': node type 'shout' of plugin 'many' (package: many = {plugin_module}:BOTH)"
        f" clashes with plugin 'one' (package: one = {plugin_module}:SHOUT) of that name; use a"
        " namespaced name such as 'many.shout'"
    ]
    assert {"shout", "made"} <= set(registry.names())


def test_broken_plugins_become_plugin_errors_naming_them(plugin_module: str) -> None:
    registry = builtin_registry()
    errors = load_entry_points(
        registry,
        points=[
            point("broken", "fr_broken_plugin:X"),
            point("missing", "fr_no_such_module:X"),
            point("factory", f"{plugin_module}:broken_factory"),
            point("number", f"{plugin_module}:NOT_A_TYPE"),
            point("good", f"{plugin_module}:WHISPER"),
        ],
    )
    messages = [str(e) for e in errors]
    assert len(messages) == 4
    assert messages[0].startswith(
        "plugin 'broken' (fr_broken_plugin:X): failed to load: ImportError: needs libfoo"
    )
    assert "plugin 'missing'" in messages[1]
    assert "factory failed: RuntimeError: no config" in messages[2]
    assert "42 is not a node type" in messages[3]
    assert "whisper" in registry


def test_strict_loading_raises_the_first_broken_plugin(plugin_module: str) -> None:
    with pytest.raises(PluginError, match="plugin 'broken'"):
        load_entry_points(
            builtin_registry(), points=[point("broken", "fr_broken_plugin:X")], strict=True
        )


def test_installed_entry_points_are_read_from_the_group() -> None:
    # tests/e2e/test_plugins.py installs examples/plugins/flowrunner-acme into the venv; any
    # other installed plugin must load cleanly too.
    registry = builtin_registry()
    assert load_entry_points(registry) == []
