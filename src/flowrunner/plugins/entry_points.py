"""Node types from installed packages: Python entry points in group ``flowrunner.nodes``.

A package declares, in its pyproject.toml::

    [project.entry-points."flowrunner.nodes"]
    acme = "flowrunner_acme:plugin"

The object an entry point names is a ``Plugin`` (see contract.py), or — the older form — a
node type, a list of them, or a zero-argument callable returning any of these (the plugin is
then named after the entry point, at its distribution's version). A plugin that fails to
import or keep the contract becomes a PluginError naming it; the other plugins still load.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from flowrunner.errors import PluginError
from flowrunner.plugins.contract import Plugin, as_plugin
from flowrunner.plugins.registry import NodeTypeRegistry, TypeSource

GROUP = "flowrunner.nodes"


@dataclass(frozen=True, slots=True)
class Discovered:
    """One entry point: its plugin, or why it has none."""

    name: str
    origin: str
    plugin: Plugin | None
    error: PluginError | None


def discover_entry_points(
    *, group: str = GROUP, points: Iterable[EntryPoint] | None = None
) -> list[Discovered]:
    """Load every entry point of ``group`` (or ``points``) into a checked Plugin."""
    found: list[Discovered] = []
    for point in entry_points(group=group) if points is None else points:
        origin = f"{point.name} = {point.value}"
        try:
            found.append(Discovered(point.name, origin, _plugin(point, origin), None))
        except PluginError as exc:
            error = PluginError(
                f"plugin '{point.name}' ({point.value}): {exc.message}", plugin=point.name
            )
            error.__cause__ = exc
            found.append(Discovered(point.name, origin, None, error))
    return found


def load_entry_points(
    registry: NodeTypeRegistry,
    *,
    group: str = GROUP,
    points: Iterable[EntryPoint] | None = None,
    strict: bool = False,
) -> list[PluginError]:
    """Register the node types of every entry point; return the errors of the broken ones.

    ``points`` replaces the installed entry points (for embedding and tests); with ``strict``
    the first broken plugin raises instead.
    """
    errors: list[PluginError] = []
    for found in discover_entry_points(group=group, points=points):
        error = found.error
        if found.plugin is not None:
            try:
                register_plugin(registry, found.plugin, "package", found.origin)
            except PluginError as exc:
                error = PluginError(f"plugin '{found.name}': {exc.message}", plugin=found.name)
        if error is not None:
            if strict:
                raise error
            errors.append(error)
    return errors


def register_plugin(
    registry: NodeTypeRegistry, plugin: Plugin, kind: str, origin: str
) -> list[str]:
    """Register every type of ``plugin`` or none (PluginError naming both sides of a clash)."""
    source = TypeSource(kind, plugin.name, plugin.version, origin)
    done: list[str] = []
    try:
        for node_type in plugin.node_types:
            registry.register(node_type, source=source)
            done.append(node_type.name)
    except PluginError:
        for name in done:
            registry.unregister(name)
        raise
    return done


def _plugin(point: EntryPoint, origin: str) -> Plugin:
    try:
        obj = point.load()
    except Exception as exc:  # any import-time failure of third-party code is the plugin's
        raise PluginError(f"failed to load: {type(exc).__name__}: {exc}") from exc
    version = point.dist.version if point.dist is not None else "0"
    try:
        return as_plugin(obj, name=point.name, version=version, origin=origin)
    except PluginError as exc:
        # The origin is in the outer message already.
        raise PluginError(exc.message.removeprefix(f"{origin}: ")) from exc
