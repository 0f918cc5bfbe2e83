"""The composition root: ``create_app(settings)`` builds the store, the services and the routes.

Nothing in the API is a module-level singleton: the lifespan opens the store (SQL stores
migrate on connect), checks the secrets keyring against what is stored (a wrong key set fails
the start, not a run hours later), creates the first admin from ``FLOWRUNNER_ADMIN_*`` and
hangs the services on ``app.state``; routes reach them through ``deps.services``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta

from fastapi import Depends, FastAPI

from flowrunner import __version__
from flowrunner.accounts import AccountService, LoginLimiter, PasswordHasher
from flowrunner.api.deps import Services
from flowrunner.api.errors import install_error_handlers
from flowrunner.api.middleware import RequestMiddleware
from flowrunner.api.plugin_choices import PluginChoices
from flowrunner.api.plugin_watcher import watching
from flowrunner.api.query_params import single_valued_query
from flowrunner.api.routes import (
    accounts,
    audit,
    auth,
    custom_types,
    executions,
    flow_graph,
    flows,
    health,
    hooks,
    plugins,
    resume,
    retention,
    secrets,
    tokens,
    triggers,
    webhooks,
    ws,
)
from flowrunner.api.routes import metrics as metrics_route
from flowrunner.api.schemas.common import document_error_envelope
from flowrunner.api.telemetry import telemetry_config
from flowrunner.audit import AuditLog
from flowrunner.collector import collector_paused
from flowrunner.config import Settings
from flowrunner.custom_types import CustomTypes
from flowrunner.definition.limits import FlowLimits
from flowrunner.executions.checkpoint_reseal import reseal_checkpoints
from flowrunner.executions.executor import default_owner
from flowrunner.executions.runtime import execution_runtime
from flowrunner.executions.service import ExecutionService
from flowrunner.flows import FlowChecker, FlowRegistry
from flowrunner.metrics import HttpMetricsMiddleware, Metrics, metered_store
from flowrunner.nodes.connections import close_connections
from flowrunner.plugins import plugin_manager
from flowrunner.plugins.manager import PluginManager
from flowrunner.retention import PolicyStore, Pruner, RetentionPolicy
from flowrunner.secrets import Keyring, SecretVault
from flowrunner.storage import Store, open_store
from flowrunner.triggers import HookLimits, InboundHooks, Scheduler, TriggerService
from flowrunner.ui import install_ui
from flowrunner.webhooks import WebhookService, webhook_runtime
from flowrunner.webhooks.secretbox import reseal_endpoints

API_PREFIX = "/api/v1"


async def build_services(
    settings: Settings,
    store: Store,
    *,
    hasher: PasswordHasher | None = None,
    plugins: PluginManager | None = None,
) -> Services:
    """Wire every service over a connected ``store``; fails on a keyring that cannot read
    the stored secrets."""
    keyring = Keyring.from_settings(settings)
    await keyring.verify(store)
    audit_log = AuditLog(store)
    limiter = LoginLimiter(
        max_failures=settings.login_max_failures,
        max_failures_per_client=settings.login_max_failures_per_client,
        window_seconds=settings.login_window_seconds,
    )
    account_service = AccountService(
        store,
        audit_log,
        limiter,
        hasher=hasher,
        login_token_ttl=timedelta(seconds=settings.login_token_ttl_seconds),
    )
    await account_service.ensure_admin_from_env(settings)
    # Plugin code is imported off the loop: a slow plugin import does not stall the start.
    manager = plugins if plugins is not None else await asyncio.to_thread(plugin_manager, settings)
    # An admin's enable/disable outlives the process that answered it.
    await asyncio.to_thread(manager.apply_choices, await PluginChoices(store).load())
    triggers = TriggerService(store, audit_log)
    node_types = CustomTypes(
        store, audit_log, manager.current, max_script_bytes=settings.max_script_bytes
    )
    return Services(
        plugins=manager,
        settings=settings,
        store=store,
        audit=audit_log,
        accounts=account_service,
        # Key rotation re-seals what else the keyring sealed: webhook endpoint secrets, and
        # the checkpoints of waiting runs (they may wait past the old key's removal).
        vault=SecretVault(
            store, keyring, audit_log, resealers=[reseal_endpoints, reseal_checkpoints]
        ),
        # Saving a flow version rewrites the triggers its YAML declares.
        flows=FlowRegistry(
            store,
            audit_log,
            _flow_checker(settings, manager),
            listeners=[triggers],
            types=node_types.registry_for,
        ),
        triggers=triggers,
        node_types=node_types,
    )


def _flow_checker(settings: Settings, plugins: PluginManager) -> FlowChecker:
    limits = FlowLimits(
        max_bytes=settings.max_flow_bytes,
        max_nodes=settings.max_flow_nodes,
        max_script_bytes=settings.max_script_bytes,
    )
    return FlowChecker(limits, workers=settings.flow_validation_workers, registry=plugins.current)


@asynccontextmanager
async def _triggers_runtime(app: FastAPI, settings: Settings, store: Store) -> AsyncIterator[None]:
    """The public hook route's service and the scheduler task, over the running executions."""
    services: Services = app.state.services
    hooks = InboundHooks(
        store,
        services.triggers.repository,
        app.state.executions,
        services.vault,
        services.audit,
        limits=HookLimits(
            max_body=settings.trigger_max_body_bytes,
            rate_per_minute=settings.trigger_rate_limit_per_minute,
            sync_timeout=settings.trigger_sync_timeout_seconds,
        ),
    )
    services.triggers.on_change(hooks.forget)
    services.vault.on_change(hooks.forget_key)
    app.state.hooks = hooks
    scheduler = Scheduler(
        services.triggers.repository,
        app.state.executions,
        tick=settings.scheduler_tick_seconds,
        max_catch_up=settings.schedule_max_catch_up,
    )
    if settings.scheduler_enabled:
        scheduler.start()
    try:
        yield
    finally:
        await scheduler.stop()


@asynccontextmanager
async def _retention(app: FastAPI, settings: Settings, store: Store) -> AsyncIterator[None]:
    """Account policies for the API, and the background pruner."""
    if not settings.retention_enabled:
        app.state.retention = None
        yield
        return
    policies = PolicyStore(store, RetentionPolicy.from_settings(settings))
    app.state.retention = policies
    pruner = Pruner(
        store,
        policies,
        batch=settings.retention_batch,
        interval=settings.retention_interval_seconds,
    )
    pruner.start()
    try:
        yield
    finally:
        await pruner.stop()


@asynccontextmanager
async def _sampling(metrics: Metrics | None, executions: ExecutionService) -> AsyncIterator[None]:
    """The gauges read off this process's state, sampled in the background."""
    if metrics is None:
        yield
        return
    probes = metrics.probes(executions.held, executions.queued)
    task = asyncio.get_running_loop().create_task(metrics.sample(probes, every=1.0))
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def create_app(
    settings: Settings | None = None,
    *,
    store: Store | None = None,
    hasher: PasswordHasher | None = None,
) -> FastAPI:
    """The Flowrunner API. ``store`` (already connected, kept open) and ``hasher`` (cheaper
    argon2 parameters) are for tests and embedding; by default the settings decide."""
    settings = settings or Settings()
    metrics = Metrics() if settings.metrics_enabled else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            # The collector is off while the services start, on again before the first
            # request (flowrunner.collector).
            with collector_paused():
                await stack.enter_async_context(_services(app))
            yield

    @asynccontextmanager
    async def _services(app: FastAPI) -> AsyncIterator[None]:
        connected = store if store is not None else await open_store(settings)
        opened = connected if metrics is None else metered_store(connected, metrics)
        try:
            app.state.services = services = await build_services(settings, opened, hasher=hasher)
            vault = services.vault
            try:
                async with (
                    webhook_runtime(
                        settings,
                        opened,
                        vault.keyring,
                        worker=default_owner(),
                        secrets=vault.resolve_all,
                        audit=services.audit,
                        observe=None if metrics is None else metrics.webhook_delivered,
                    ) as hooks,
                    execution_runtime(
                        settings,
                        opened,
                        secrets=vault.resolve_all,
                        keys=vault.keyring,
                        registry=services.plugins.current,
                        types=services.node_types.registry_for,
                        webhooks=hooks.outbox,
                        observe_bus=None if metrics is None else metrics.bus,
                        observe_sandbox=None if metrics is None else metrics.watch_sandbox,
                    ) as app.state.executions,
                    watching(services.plugins, services.audit, watch=settings.plugins_watch),
                    _triggers_runtime(app, settings, opened),
                ):
                    app.state.webhooks = WebhookService(
                        opened, vault.keyring, hooks, services.audit
                    )
                    # Flow saves and deletes write their webhook events with the change.
                    services.flows.publish(hooks.outbox)
                    async with (
                        _sampling(metrics, app.state.executions),
                        _retention(app, settings, opened),
                    ):
                        yield
            finally:
                app.state.services.flows.close()
                # The database nodes' pools and the pooled MCP sessions, once no run uses them.
                await close_connections()
        finally:
            if store is None:
                await connected.close()
            if metrics is not None:
                metrics.process_exited()

    app = FastAPI(
        title="Flowrunner",
        version=__version__,
        summary="YAML-driven workflow orchestration",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # served by install_ui, from local assets (no CDN)
        redoc_url=None,
        lifespan=lifespan,
        dependencies=[Depends(single_valued_query)],
        telemetry=telemetry_config(),
    )
    app.state.metrics = metrics
    # FastAPI caches the document (and rebuilds it when routes change): adding the error
    # envelope's schemas to it is idempotent.
    app.openapi = lambda: document_error_envelope(FastAPI.openapi(app))  # type: ignore[method-assign]
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(metrics_route.router)
    # The public hook route first: the hot path of a flow served as an API (routes are tried
    # in order).
    routers = (
        hooks, executions, flows, flow_graph, custom_types, plugins, auth, accounts, tokens,
        secrets, audit, webhooks, ws, triggers, retention, resume,
    )  # fmt: skip
    for module in routers:
        app.include_router(module.router, prefix=API_PREFIX)
    install_ui(app, openapi_url=f"{API_PREFIX}/openapi.json")
    # Request id, body limit, input guard and log correlation in one layer (api.middleware).
    app.add_middleware(
        RequestMiddleware,
        default=settings.max_request_bytes,
        by_prefix=[
            (f"{API_PREFIX}/flows", settings.max_flow_bytes),
            (f"{API_PREFIX}/hooks", settings.trigger_max_body_bytes),
        ],
        max_json_depth=settings.max_json_depth,
    )
    if metrics is not None:
        # Outermost: a request refused by the body limit is counted too.
        app.add_middleware(HttpMetricsMiddleware, metrics=metrics)
    return app
