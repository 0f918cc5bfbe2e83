"""Plugins from a folder: each ``*.py`` module or package (a folder with ``__init__.py``)
dropped into ``FLOWRUNNER_PLUGINS_DIR`` is one plugin.

A module declares ``plugin = Plugin(...)`` (or ``node_types = [...]``, for a plugin named after
the file). Each load imports the file under a fresh module name (``flowrunner_plugin_<stem>_<n>``):
the previous version's classes and functions stay untouched, so a run that started with them
keeps them, and a new version never sees stale module state. Only a file whose content changed
is imported again (a content hash, not a timestamp: two edits within a second still count).
A package should import its own submodules relatively (``from . import client``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from flowrunner.errors import PluginError
from flowrunner.plugins.contract import Plugin, as_plugin

MAX_PLUGIN_BYTES = 4 * 1024 * 1024
"""All the .py files of one folder plugin together; a bigger one is refused, not read."""
MAX_PLUGINS = 200

_serial = itertools.count(1)


@dataclass(frozen=True, slots=True)
class PluginFile:
    """A module or package of the folder, and the hash of its code."""

    stem: str
    path: Path
    digest: str


@dataclass(frozen=True, slots=True)
class LoadedModule:
    module_name: str
    plugin: Plugin


def scan(folder: Path) -> list[PluginFile]:
    """The folder's plugin modules, by name; dotfiles and ``_private`` names are skipped."""
    found: list[PluginFile] = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith((".", "_")):
            continue
        if path.is_file() and path.suffix == ".py":
            files = [path]
        elif path.is_dir() and (path / "__init__.py").is_file():
            files = sorted(p for p in path.rglob("*.py") if "__pycache__" not in p.parts)
        else:
            continue
        found.append(PluginFile(path.stem if path.is_file() else path.name, path, _digest(files)))
        if len(found) >= MAX_PLUGINS:
            break
    return found


def _digest(files: list[Path]) -> str:
    digest = hashlib.sha256()
    total = 0
    for file in files:
        try:
            data = file.read_bytes()
        except OSError:
            data = b""  # vanished between listing and reading: the next scan sees it
        total += len(data)
        if total > MAX_PLUGIN_BYTES:
            return "too-large"
        digest.update(str(file).encode() + b"\0" + data + b"\0")
    return digest.hexdigest()


def load(file: PluginFile) -> LoadedModule:
    """Import ``file`` afresh and return its checked plugin; PluginError naming the file."""
    origin = str(file.path)
    if file.digest == "too-large":
        raise PluginError(f"{origin}: over {MAX_PLUGIN_BYTES} bytes of code", plugin=file.stem)
    module_name = f"flowrunner_plugin_{_identifier(file.stem)}_{next(_serial)}"
    init = file.path / "__init__.py" if file.path.is_dir() else file.path
    spec = importlib.util.spec_from_file_location(
        module_name,
        init,
        submodule_search_locations=[str(file.path)] if file.path.is_dir() else None,
    )
    if spec is None or spec.loader is None:
        raise PluginError(f"{origin}: cannot be imported", plugin=file.stem)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and relative imports look it up there
    try:
        spec.loader.exec_module(module)
        plugin = _plugin_of(module, file, origin)
    except PluginError:
        forget(module_name)
        raise
    except BaseException as exc:  # plugin code may raise anything, SystemExit included
        forget(module_name)
        line = _line_in(exc, file.path)
        where = f"{origin}:{line}" if line else origin
        raise PluginError(
            f"{where}: failed to import: {type(exc).__name__}: {exc}", plugin=file.stem
        ) from exc
    return LoadedModule(module_name, plugin)


def forget(module_name: str) -> None:
    """Drop a module (and a package's submodules) from ``sys.modules``; objects still in use
    (by runs in flight) stay alive through their references."""
    for name in [n for n in sys.modules if n == module_name or n.startswith(module_name + ".")]:
        del sys.modules[name]


def _plugin_of(module: ModuleType, file: PluginFile, origin: str) -> Plugin:
    obj = getattr(module, "plugin", None)
    if obj is None:
        obj = getattr(module, "node_types", None)
    if obj is None:
        raise PluginError(
            f"{origin}: defines neither `plugin = Plugin(...)` nor `node_types`",
            plugin=file.stem,
        )
    version = str(getattr(module, "__version__", "0"))
    return as_plugin(obj, name=file.stem, version=version, origin=origin)


def _identifier(stem: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in stem)


def _line_in(exc: BaseException, path: Path) -> int | None:
    """The line of ``path`` the exception came from (a SyntaxError's own, else the traceback's
    last frame in the plugin's files)."""
    if isinstance(exc, SyntaxError) and exc.lineno:
        return exc.lineno
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if Path(tb.tb_frame.f_code.co_filename).is_relative_to(path):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
