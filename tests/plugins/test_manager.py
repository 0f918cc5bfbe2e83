"""The plugin manager over a real folder: load, change, break, remove, clash, disable."""

from __future__ import annotations

import asyncio
import shutil
import textwrap
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from flowrunner.definition import validate_flow
from flowrunner.errors import NotFound
from flowrunner.plugins import GROUP
from flowrunner.plugins.manager import PluginManager
from tests.conftest import HANG_GUARD

MODULE = """
from flowrunner.plugins import FunctionNodeType, Plugin

def work(call):
    return "{tag}"

plugin = Plugin(
    name="{name}",
    version="{tag}",
    node_types=[FunctionNodeType(name="{type}", description="d", work=work)],
)
"""


def write(folder: Path, stem: str, tag: str, type_name: str = "t.echo") -> None:
    text = MODULE.format(tag=tag, name=stem, type=type_name)
    (folder / f"{stem}.py").write_text(textwrap.dedent(text))


def manager(folder: Path) -> PluginManager:
    return PluginManager(folder=folder, entry_points=False)


def test_a_reload_swaps_in_a_new_registry_with_a_higher_generation(tmp_path: Path) -> None:
    plugins = manager(tmp_path)
    write(tmp_path, "echo", "1")
    first = plugins.reload()
    old = plugins.current()
    assert first.changed == ["echo"]
    assert old.source("t.echo").kind == "folder"
    assert old.source("t.echo").version == "1"

    assert plugins.reload().changed == []  # unchanged code is not imported again
    write(tmp_path, "echo", "2")
    plugins.reload()
    new = plugins.current()
    assert new.generation > old.generation
    assert new.source("t.echo").version == "2"
    assert old.source("t.echo").version == "1"  # whoever holds the old registry keeps it


def test_a_broken_edit_keeps_the_last_good_version_and_says_where(tmp_path: Path) -> None:
    plugins = manager(tmp_path)
    write(tmp_path, "echo", "1")
    plugins.reload()
    (tmp_path / "echo.py").write_text("x = 1\nraise RuntimeError('no token')\n")
    report = plugins.reload()
    assert "echo.py:2: failed to import: RuntimeError: no token" in report.errors["echo"]
    status = plugins.get("echo")
    assert status.status == "degraded"
    assert "the last good version (1) serves" in (status.error or "")
    assert plugins.current().source("t.echo").version == "1"


def test_a_plugin_that_never_loaded_is_failed_and_the_others_serve(tmp_path: Path) -> None:
    plugins = manager(tmp_path)
    write(tmp_path, "good", "1", "t.good")
    (tmp_path / "bad.py").write_text("plugin = 42\n")
    (tmp_path / "_private.py").write_text("raise SystemExit\n")
    report = plugins.reload()
    assert "is not a node type" in report.errors["bad"]
    assert plugins.get("bad").status == "failed"
    assert "t.good" in plugins.current()
    with pytest.raises(NotFound):
        plugins.get("_private")


def test_an_invalid_node_type_is_reported_with_its_file_and_an_edit_to_one_keeps_the_last_good(
    tmp_path: Path,
) -> None:
    plugins = manager(tmp_path)
    bad_schema = MODULE.replace("work=work)", 'work=work, params_schema={{"type": "nope"}})')
    fresh = bad_schema.format(tag=1, name="fresh", type="t.fresh")
    (tmp_path / "fresh.py").write_text(textwrap.dedent(fresh))
    write(tmp_path, "echo", "1")
    report = plugins.reload()
    assert report.errors["fresh"].startswith(f"{tmp_path / 'fresh.py'}: plugin 'fresh' is invalid")
    assert "node type 't.fresh': invalid params_schema" in report.errors["fresh"]
    assert (plugins.get("fresh").status, plugins.get("echo").status) == ("failed", "active")
    (tmp_path / "echo.py").write_text(
        textwrap.dedent(bad_schema.format(tag=2, name="echo", type="t.echo"))
    )
    report = plugins.reload()
    assert "invalid params_schema" in report.errors["echo"]
    status = plugins.get("echo")
    assert status.status == "degraded"
    assert "the last good version (1) serves" in (status.error or "")
    assert plugins.current().source("t.echo").version == "1"


def test_a_clash_that_registers_nothing_is_failed_not_degraded(tmp_path: Path) -> None:
    plugins = manager(tmp_path)
    write(tmp_path, "first", "1", "t.same")
    write(tmp_path, "second", "1", "t.same")
    report = plugins.reload()
    assert "clashes with plugin 'first'" in report.errors["second"]
    assert (plugins.get("first").status, plugins.get("second").status) == ("active", "failed")


def test_an_edit_that_clashes_with_another_plugin_keeps_the_last_good_version(
    tmp_path: Path,
) -> None:
    plugins = manager(tmp_path)
    write(tmp_path, "first", "1", "t.first")
    write(tmp_path, "second", "1", "t.second")
    plugins.reload()
    write(tmp_path, "second", "2", "t.first")
    report = plugins.reload()
    assert "clashes with plugin 'first'" in report.errors["second"]
    status = plugins.get("second")
    assert (status.status, status.types) == ("degraded", ("t.second",))
    assert "the last good version (1) serves" in (status.error or "")
    assert plugins.current().source("t.first").plugin == "first"
    assert plugins.current().source("t.second").version == "1"
    plugins.set_enabled("first", True)  # any later rebuild keeps it so
    assert plugins.get("second").types == ("t.second",)


def test_a_package_folder_loads_with_relative_imports_and_reloads_when_a_submodule_changes(
    tmp_path: Path,
) -> None:
    package = tmp_path / "acme_tools"
    package.mkdir()
    (package / "helpers.py").write_text("PREFIX = 'one'\n")
    (package / "__init__.py").write_text(
        textwrap.dedent(
            """
            from flowrunner.plugins import FunctionNodeType, Plugin
            from . import helpers

            def work(call):
                return helpers.PREFIX

            plugin = Plugin(name="acme_tools", version=helpers.PREFIX, node_types=[
                FunctionNodeType(name="acme.tools.prefix", description="d", work=work)])
            """
        )
    )
    plugins = manager(tmp_path)
    assert plugins.reload().changed == ["acme_tools"]
    assert plugins.get("acme_tools").status == "active"
    assert plugins.current().source("acme.tools.prefix").version == "one"
    (package / "helpers.py").write_text("PREFIX = 'two'\n")
    assert plugins.reload().changed == ["acme_tools"]
    assert plugins.current().source("acme.tools.prefix").version == "two"


def test_a_removed_file_takes_its_types_away(tmp_path: Path) -> None:
    plugins = manager(tmp_path)
    write(tmp_path, "echo", "1")
    plugins.reload()
    (tmp_path / "echo.py").unlink()
    assert plugins.reload().removed == ["echo"]
    assert "t.echo" not in plugins.current()


def test_a_plugin_cannot_replace_a_builtin_and_the_error_names_both(tmp_path: Path) -> None:
    plugins = manager(tmp_path)
    write(tmp_path, "sneaky", "1", "log")
    report = plugins.reload()
    message = report.errors["sneaky"]
    assert f"node type 'log' of plugin 'sneaky' (folder: {tmp_path / 'sneaky.py'})" in message
    assert "clashes with the built-in" in message
    assert "such as 'sneaky.log'" in message
    assert plugins.current().source("log").kind == "builtin"
    assert plugins.get("sneaky").types == ()


def test_a_disabled_plugins_types_fail_validation_with_a_clear_message(tmp_path: Path) -> None:
    plugins = manager(tmp_path)
    write(tmp_path, "echo", "1")
    plugins.reload()
    flow = "metadata: {name: F}\nnodes:\n  a: {type: t.echo}\n"
    assert validate_flow(flow, registry=plugins.current()) == []
    plugins.set_enabled("echo", False)
    [problem] = validate_flow(flow, registry=plugins.current())
    assert problem.message == "node type 't.echo' belongs to plugin 'echo', which is disabled"
    assert (problem.line, problem.column) == (3, 13)
    assert problem.hint is None
    plugins.set_enabled("echo", True)
    assert validate_flow(flow, registry=plugins.current()) == []


def test_a_package_plugin_declares_its_metadata(tmp_path: Path) -> None:
    write(tmp_path, "fr_pkg_plugin", "3")
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        plugins = PluginManager(
            points=[EntryPoint("pkg", "fr_pkg_plugin:plugin", GROUP)],
        )
        plugins.reload()
    finally:
        sys.path.remove(str(tmp_path))
    status = plugins.get("pkg")
    assert (status.kind, status.status, status.types) == ("package", "active", ("t.echo",))
    assert plugins.current().source("t.echo").plugin == "fr_pkg_plugin"


async def test_a_folder_created_after_the_start_is_loaded_watched_and_waited_for_again(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "later" / "plugins"
    plugins = manager(folder)
    assert plugins.reload().errors == {}  # missing: no plugins, and no error
    stop = asyncio.Event()
    task = asyncio.create_task(plugins.watch(stop, poll=0.05))

    async def until_listed(name: str, present: bool = True) -> None:
        async with asyncio.timeout(HANG_GUARD):
            while (name in plugins.current()) != present:  # noqa: ASYNC110 - the watcher's state
                await asyncio.sleep(0.02)

    try:
        # Prepared elsewhere and moved into place: found when the folder appears.
        staging = tmp_path / "staging"
        staging.mkdir()
        write(staging, "first", "1", "t.first")
        folder.parent.mkdir()
        staging.rename(folder)
        await until_listed("t.first")
        write(folder, "second", "1", "t.second")  # then watched
        await until_listed("t.second")

        shutil.rmtree(folder)  # removed: its types go ...
        await until_listed("t.first", present=False)
        folder.mkdir()  # ... and a new folder of that name is watched again
        write(folder, "third", "1", "t.third")
        await until_listed("t.third")
        assert "t.second" not in plugins.current()
    finally:
        stop.set()
        await asyncio.wait_for(task, HANG_GUARD)


def test_stored_choices_override_the_settings_and_wait_for_plugins_not_loaded_yet(
    tmp_path: Path,
) -> None:
    plugins = PluginManager(folder=tmp_path, entry_points=False, disabled=["echo"])
    write(tmp_path, "echo", "1")
    plugins.reload()
    assert plugins.get("echo").status == "disabled"
    generation = plugins.current().generation
    plugins.apply_choices({"echo": True, "later": False})
    assert plugins.get("echo").status == "active"
    assert "t.echo" in plugins.current()
    assert plugins.current().generation > generation
    unchanged = plugins.current()
    plugins.apply_choices({"echo": True})
    assert plugins.current() is unchanged  # nothing to change: no rebuild

    write(tmp_path, "later", "1", "t.later")
    plugins.reload()
    assert plugins.get("later").status == "disabled"
    assert "belongs to plugin 'later', which is disabled" in plugins.current().unknown_message(
        "t.later"
    )
