"""The plugin manager: loads plugins, swaps in a new registry on change, enables and disables.

One manager per server process, built by the composition root. ``registry`` is the current
``NodeTypeRegistry``: a reload or an enable/disable builds a whole new registry (built-ins,
then every enabled plugin that loaded) and swaps it in with one assignment, so a check or a
compile never sees half a reload, and whoever holds the old registry (a compiled flow, a run
in flight) keeps it. Each new registry has a higher ``generation``.

A plugin whose new version fails to import or register keeps its last good version serving,
and its error is reported (``plugins()``). Packages (entry points) load once, at the first
reload: upgrading one needs a restart; the folder is scanned on every reload.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib.metadata import EntryPoint
from pathlib import Path

from flowrunner.errors import NotFound, PluginError
from flowrunner.plugins import folder as plugin_folder
from flowrunner.plugins.contract import Plugin
from flowrunner.plugins.entry_points import discover_entry_points, register_plugin
from flowrunner.plugins.registry import NodeTypeRegistry

log = logging.getLogger("flowrunner.plugins")


@dataclass(frozen=True, slots=True)
class PluginStatus:
    """What the API shows of one plugin."""

    name: str
    kind: str  # package | folder
    origin: str
    plugin: Plugin | None  # the version serving (the last good one)
    enabled: bool = True
    error: str | None = None  # the last load's or registration's error
    loaded_at: datetime | None = None
    types: tuple[str, ...] = ()  # registered now

    @property
    def status(self) -> str:
        if not self.enabled:
            return "disabled"
        if self.plugin is None or (self.error and not self.types):
            return "failed"  # nothing of it serves
        return "degraded" if self.error else "active"


@dataclass(frozen=True, slots=True)
class ReloadReport:
    generation: int
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class _Entry:
    status: PluginStatus
    digest: str | None = None  # folder plugins: the code the serving version came from
    module: str | None = None
    registered: Plugin | None = None  # the version the last rebuild registered


class PluginManager:
    """Plugins from entry points and a folder, and the registry they make."""

    def __init__(
        self,
        *,
        folder: Path | None = None,
        entry_points: bool = True,
        points: Iterable[EntryPoint] | None = None,
        disabled: Iterable[str] = (),
        builtins: Callable[[], NodeTypeRegistry] | None = None,
    ) -> None:
        from flowrunner.plugins import builtin_registry

        self.folder = folder
        self._use_entry_points = entry_points
        self._points = points
        self._disabled = set(disabled)
        self._builtins = builtins or builtin_registry
        self._entries: dict[str, _Entry] = {}
        self._packages_loaded = False
        self._generation = 0
        self._lock = threading.Lock()  # reloads come from the watcher, the API, the CLI
        self._alock = asyncio.Lock()
        self.registry: NodeTypeRegistry = self._builtins()
        self.on_change: Callable[[ReloadReport], Awaitable[None]] | None = None

    # --- reading -------------------------------------------------------------------------

    def current(self) -> NodeTypeRegistry:
        """The registry to check and compile flows against now."""
        return self.registry

    def plugins(self) -> list[PluginStatus]:
        return [e.status for _, e in sorted(self._entries.items())]

    def get(self, name: str) -> PluginStatus:
        entry = self._entries.get(name)
        if entry is None:
            raise NotFound(f"no plugin '{name}'")
        return entry.status

    # --- changing ------------------------------------------------------------------------

    def reload(self) -> ReloadReport:
        """Load new and changed plugins, drop removed ones, and swap in a new registry."""
        with self._lock:
            changed: list[str] = []
            removed: list[str] = []
            errors: dict[str, str] = {}
            if self._use_entry_points and not self._packages_loaded:
                self._packages_loaded = True
                for found in discover_entry_points(points=self._points):
                    self._loaded("package", found.name, found.origin, found.plugin, found.error)
                    if found.error is not None:
                        errors[found.name] = str(found.error)
                    changed.append(found.name)
            if self.folder is not None:
                self._reload_folder(changed, removed, errors)
            self._rebuild(errors)
            report = ReloadReport(self._generation, changed, removed, errors)
        for name, message in errors.items():
            log.warning("plugin %s: %s", name, message)
        return report

    async def areload(self, *, notify: bool = True) -> ReloadReport:
        """``reload`` off the event loop (imports run plugin code), then ``on_change`` (unless
        the caller reports the change itself)."""
        async with self._alock:
            report = await asyncio.to_thread(self.reload)
            if notify and self.on_change is not None and (report.changed or report.removed):
                await self.on_change(report)
            return report

    def set_enabled(self, name: str, enabled: bool) -> PluginStatus:
        """Enable or disable plugin ``name``: a disabled plugin's types fail validation (runs
        in flight keep theirs)."""
        with self._lock:
            if name not in self._entries:
                raise NotFound(f"no plugin '{name}'")
            (self._disabled.discard if enabled else self._disabled.add)(name)
            entry = self._entries[name]
            entry.status = replace(entry.status, enabled=enabled)
            self._rebuild({})
            return self._entries[name].status

    def apply_choices(self, choices: Mapping[str, bool]) -> None:
        """Enable or disable plugins by name as stored choices say (those not loaded are
        remembered for when they load), over the settings' ``disabled``; one rebuild."""
        with self._lock:
            changed = False
            for name, enabled in choices.items():
                if (name not in self._disabled) == enabled:
                    continue
                changed = True
                (self._disabled.discard if enabled else self._disabled.add)(name)
                entry = self._entries.get(name)
                if entry is not None:
                    entry.status = replace(entry.status, enabled=enabled)
            if changed:
                self._rebuild({})

    async def watch(self, stop: asyncio.Event, *, poll: float = 1.0) -> None:
        """Reload whenever a ``.py`` file of the folder changes, until ``stop`` is set.

        A folder that does not exist (yet, or any more) is waited for: its existence is
        checked every ``poll`` seconds (a stat), and once it appears it is loaded and watched.
        watchfiles cannot watch a path that is not there (and goes on watching nothing when
        the folder is removed); watching the parent instead could mean watching a whole tree.
        """
        if self.folder is None:
            return
        from watchfiles import Change, awatch

        def code(change: Change, path: str) -> bool:
            return path.endswith(".py") and "__pycache__" not in path

        folder = self.folder
        while not stop.is_set():
            if not folder.is_dir():
                log.warning("plugins folder %s does not exist: waiting for it", folder)
                await self._reload_logged()  # a removed folder's plugins go
                while not folder.is_dir():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(poll):
                            await stop.wait()
                    if stop.is_set():
                        return
                log.info("plugins folder %s is there: loading and watching it", folder)
            # An empty batch every ``poll`` seconds: the first one says the watch is in place,
            # and a reload then catches what was written before it was (nothing is imported
            # again when nothing changed); the next ones check that the folder still exists.
            watched = False
            try:
                async for changes in awatch(
                    folder,
                    watch_filter=code,
                    stop_event=stop,
                    debounce=200,
                    rust_timeout=int(poll * 1000),
                    yield_on_timeout=True,
                ):
                    if changes or not watched:
                        watched = True
                        await self._reload_logged()
                    if not folder.is_dir():
                        break
            except FileNotFoundError:
                pass  # removed as the watch began: waited for again

    async def _reload_logged(self) -> None:
        try:
            await self.areload()
        except Exception:  # the watcher must outlive any one reload; the error is logged
            log.exception("plugin reload failed")

    # --- internals -----------------------------------------------------------------------

    def _reload_folder(
        self, changed: list[str], removed: list[str], errors: dict[str, str]
    ) -> None:
        assert self.folder is not None
        try:
            # Not there (yet, or any more): no plugins from it; the watcher waits for it.
            files = plugin_folder.scan(self.folder) if self.folder.exists() else []
        except OSError as exc:
            errors["(folder)"] = f"{self.folder}: cannot be read: {exc}"
            return
        seen = set()
        for file in files:
            entry = self._entries.get(file.stem)
            if entry is not None and entry.status.kind != "folder":
                errors[file.stem] = (
                    f"{file.path}: a package plugin '{file.stem}' exists; rename the file"
                )
                continue
            seen.add(file.stem)
            if entry is not None and entry.digest == file.digest:
                continue
            changed.append(file.stem)
            try:
                loaded = plugin_folder.load(file)
            except PluginError as exc:
                errors[file.stem] = exc.message
                self._loaded("folder", file.stem, str(file.path), None, exc, digest=file.digest)
                continue
            if entry is not None and entry.module:
                plugin_folder.forget(entry.module)
            self._loaded("folder", file.stem, str(file.path), loaded.plugin, None, file.digest)
            self._entries[file.stem].module = loaded.module_name
        for name, entry in list(self._entries.items()):
            if entry.status.kind == "folder" and name not in seen:
                removed.append(name)
                if entry.module:
                    plugin_folder.forget(entry.module)
                del self._entries[name]

    def _loaded(
        self,
        kind: str,
        name: str,
        origin: str,
        plugin: Plugin | None,
        error: PluginError | None,
        digest: str | None = None,
    ) -> None:
        entry = self._entries.get(name)
        if plugin is None and entry is not None and entry.status.plugin is not None:
            # The new version is broken: the last good one keeps serving.
            message = f"{error}; the last good version ({entry.status.plugin.version}) serves"
            entry.status = replace(entry.status, error=message)
            entry.digest = digest
            return
        status = PluginStatus(
            name=name,
            kind=kind,
            origin=origin,
            plugin=plugin,
            enabled=name not in self._disabled,
            error=str(error) if error else None,
            loaded_at=datetime.now(UTC) if plugin is not None else None,
        )
        if entry is None:
            self._entries[name] = _Entry(status, digest)
        else:
            entry.status, entry.digest = status, digest

    @staticmethod
    def _fall_back(
        registry: NodeTypeRegistry, entry: _Entry, status: PluginStatus, exc: PluginError
    ) -> tuple[PluginStatus, tuple[str, ...]]:
        """A new version that cannot be registered (its type clashes with another's): the
        version registered before serves on, if there was one and it still registers."""
        last = entry.registered
        if last is not None and last is not status.plugin:
            try:
                types = tuple(register_plugin(registry, last, status.kind, status.origin))
            except PluginError:
                pass
            else:
                message = f"{exc.message}; the last good version ({last.version}) serves"
                return replace(status, plugin=last, error=message), types
        return replace(status, error=f"not registered: {exc.message}"), ()

    def _rebuild(self, errors: dict[str, str]) -> None:
        """A new registry from the built-ins and every enabled plugin; swapped in at once."""
        self._generation += 1
        registry = self._builtins()
        registry.generation = self._generation
        # Packages first, then the folder; by name within each: a stable order decides clashes.
        order = sorted(
            self._entries.items(), key=lambda kv: (kv[1].status.kind != "package", kv[0])
        )
        for name, entry in order:
            status = entry.status
            plugin = status.plugin
            types: tuple[str, ...] = ()
            if plugin is not None and not status.enabled:
                for node_type in plugin.node_types:
                    registry.withhold(
                        node_type.name,
                        f"node type '{node_type.name}' belongs to plugin '{name}', "
                        "which is disabled",
                    )
            elif plugin is not None:
                try:
                    types = tuple(register_plugin(registry, plugin, status.kind, status.origin))
                    entry.registered = plugin
                    if status.error and status.error.startswith("not registered: "):
                        status = replace(status, error=None)
                except PluginError as exc:
                    errors[name] = exc.message
                    status, types = self._fall_back(registry, entry, status, exc)
            entry.status = replace(status, types=types)
        self.registry = registry
