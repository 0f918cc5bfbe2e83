"""Models of the node-type catalog and the plugin routes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from flowrunner.plugins.contract import type_actions
from flowrunner.plugins.manager import PluginStatus, ReloadReport
from flowrunner.plugins.registry import NodeTypeRegistry


class NodeTypeOut(BaseModel):
    name: str
    description: str
    aliases: list[str]
    params_schema: dict[str, Any]
    actions: list[str] | None
    """Actions besides ``default`` (and ``error``); null: decided at run time."""
    blocking: bool
    source: str
    """builtin, package, folder (or account, for JavaScript node types)."""
    plugin: str | None
    version: str | None
    origin: str | None

    @classmethod
    def catalog(cls, registry: NodeTypeRegistry) -> list[NodeTypeOut]:
        out = []
        for name in registry.canonical_names():
            node_type = registry.get(name)
            source = registry.source(name)
            out.append(
                cls(
                    name=name,
                    description=node_type.description,
                    aliases=registry.aliases(name),
                    params_schema=dict(node_type.params_schema),
                    actions=type_actions(node_type),
                    blocking=bool(getattr(node_type, "blocking", False)),
                    source=source.kind,
                    plugin=source.plugin,
                    version=source.version,
                    origin=source.origin,
                )
            )
        return out


class NodeTypeList(BaseModel):
    items: list[NodeTypeOut]


class PluginOut(BaseModel):
    name: str
    status: str
    """active, degraded (a newer version failed; the last good one serves), failed (nothing
    of it serves: it never loaded, or its types could not be registered), disabled."""
    enabled: bool
    kind: str
    """package (an entry point) or folder (a module in the plugins folder)."""
    origin: str
    version: str | None
    description: str | None
    author: str | None
    node_types: list[str]
    """Registered now (none while disabled)."""
    declared_types: list[str]
    error: str | None
    loaded_at: datetime | None

    @classmethod
    def of(cls, status: PluginStatus) -> PluginOut:
        plugin = status.plugin
        return cls(
            name=status.name,
            status=status.status,
            enabled=status.enabled,
            kind=status.kind,
            origin=status.origin,
            version=plugin.version if plugin else None,
            description=plugin.description if plugin else None,
            author=plugin.author if plugin else None,
            node_types=list(status.types),
            declared_types=[t.name for t in plugin.node_types] if plugin else [],
            error=status.error,
            loaded_at=status.loaded_at,
        )


class PluginList(BaseModel):
    items: list[PluginOut]


class ReloadOut(BaseModel):
    generation: int
    changed: list[str]
    removed: list[str]
    errors: dict[str, str]
    plugins: list[PluginOut]

    @classmethod
    def of(cls, report: ReloadReport, plugins: list[PluginStatus]) -> ReloadOut:
        return cls(
            generation=report.generation,
            changed=report.changed,
            removed=report.removed,
            errors=report.errors,
            plugins=[PluginOut.of(p) for p in plugins],
        )
