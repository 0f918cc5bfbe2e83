"""Node types from installed packages: Python entry points in group ``flowrunner.nodes``.

A package declares, in its pyproject.toml::

    [project.entry-points."flowrunner.nodes"]
    slack = "flowrunner_slack:node_types"

The object an entry point names may be a node type, a list of them, or a zero-argument
callable returning either. A plugin that fails to import or register becomes a PluginError
naming it; the other plugins still load.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import EntryPoint, entry_points

from flowrunner.errors import PluginError
from flowrunner.plugins.registry import NodeType, NodeTypeRegistry

GROUP = "flowrunner.nodes"


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
    for point in entry_points(group=group) if points is None else points:
        try:
            for node_type in _node_types(point):
                registry.register(node_type)
        except PluginError as exc:
            error = PluginError(
                f"plugin '{point.name}' ({point.value}): {exc.message}", plugin=point.name
            )
            error.__cause__ = exc
            if strict:
                raise error from exc
            errors.append(error)
    return errors


def _node_types(point: EntryPoint) -> list[NodeType]:
    try:
        obj = point.load()
    except Exception as exc:  # any import-time failure of third-party code is the plugin's
        raise PluginError(f"failed to load: {type(exc).__name__}: {exc}") from exc
    if not _looks_like_type(obj) and not isinstance(obj, list | tuple) and callable(obj):
        try:
            obj = obj()
        except Exception as exc:  # same: the factory is third-party code
            raise PluginError(f"factory failed: {type(exc).__name__}: {exc}") from exc
    items = list(obj) if isinstance(obj, list | tuple) else [obj]
    for item in items:
        if not _looks_like_type(item):
            raise PluginError(
                f"{item!r} is not a node type (needs name, description, "
                "params_schema, code_params and build)"
            )
    return items


def _looks_like_type(obj: object) -> bool:
    return isinstance(obj, NodeType) and not isinstance(obj, type)
