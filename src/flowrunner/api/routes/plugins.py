"""``/api/v1/node-types`` and ``/api/v1/plugins``: the catalog of node types, and plugin
management (admins enable, disable and reload; every change is audited).

Plugins are the server's, the same for every account: any signed-in account may read the
catalog (an editor needs it) — the server's types plus the caller's own JavaScript node types
(``routes/custom_types.py``); only admins change plugins, since Python plugins run with the
server's rights.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Path

from flowrunner.api.deps import AdminAccount, CurrentAccount, Svc
from flowrunner.api.plugin_choices import PluginChoices
from flowrunner.api.plugin_watcher import audit_reload
from flowrunner.api.schemas.common import COMMON_ERRORS, error_responses
from flowrunner.api.schemas.plugins import (
    NodeTypeList,
    NodeTypeOut,
    PluginList,
    PluginOut,
    ReloadOut,
)
from flowrunner.audit.actions import PLUGIN_DISABLED, PLUGIN_ENABLED

router = APIRouter(tags=["plugins"], responses=COMMON_ERRORS)
PluginName = Annotated[str, Path(max_length=100)]
ADMIN_ONLY = error_responses(403)


@router.get("/node-types", response_model=NodeTypeList, summary="Every node type a flow may use")
async def list_node_types(account: CurrentAccount, svc: Svc) -> NodeTypeList:
    # The server's types and the caller's own JavaScript ones (source "account").
    return NodeTypeList(items=NodeTypeOut.catalog(await svc.node_types.registry_for(account.id)))


@router.get("/plugins", response_model=PluginList, summary="Installed plugins and their status")
async def list_plugins(account: CurrentAccount, svc: Svc) -> PluginList:
    return PluginList(items=[PluginOut.of(p) for p in svc.plugins.plugins()])


@router.post(
    "/plugins/reload",
    response_model=ReloadOut,
    responses=ADMIN_ONLY,
    summary="Load new and changed plugins of the folder (admin)",
)
async def reload_plugins(admin: AdminAccount, svc: Svc) -> ReloadOut:
    report = await svc.plugins.areload(notify=False)
    # Choices another server process stored since this one started apply now.
    await asyncio.to_thread(svc.plugins.apply_choices, await PluginChoices(svc.store).load())
    await audit_reload(svc.audit, report, admin.id)
    return ReloadOut.of(report, svc.plugins.plugins())


@router.get("/plugins/{name}", response_model=PluginOut, summary="One plugin")
async def get_plugin(name: PluginName, account: CurrentAccount, svc: Svc) -> PluginOut:
    return PluginOut.of(svc.plugins.get(name))


@router.post(
    "/plugins/{name}/enable", response_model=PluginOut, responses=ADMIN_ONLY, summary="(admin)"
)
async def enable_plugin(name: PluginName, admin: AdminAccount, svc: Svc) -> PluginOut:
    return await _set_enabled(svc, admin.id, name, True)


@router.post(
    "/plugins/{name}/disable",
    response_model=PluginOut,
    responses=ADMIN_ONLY,
    summary="Disable a plugin: flows using its types fail validation; runs go on (admin)",
)
async def disable_plugin(name: PluginName, admin: AdminAccount, svc: Svc) -> PluginOut:
    return await _set_enabled(svc, admin.id, name, False)


async def _set_enabled(svc: Svc, actor_id: str, name: str, enabled: bool) -> PluginOut:
    svc.plugins.get(name)  # NotFound before anything is stored
    # Stored first: a choice that could not be kept is not applied either.
    await PluginChoices(svc.store).save(name, enabled, actor_id)
    # The registry rebuild validates every schema again: off the loop.
    status = await asyncio.to_thread(svc.plugins.set_enabled, name, enabled)
    await svc.audit.record(
        PLUGIN_ENABLED if enabled else PLUGIN_DISABLED,
        account_id=actor_id,
        actor_id=actor_id,
        target=name,
    )
    return PluginOut.of(status)
