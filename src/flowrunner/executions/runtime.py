"""The run machinery of one server process, built from settings and torn down in order.

``execution_runtime`` is what the API's lifespan enters: it builds the bus, the compiled-flow
cache (with a lazily started JavaScript sandbox), the runner, the in-process executor,
recovery and the waker (durable waits); claims runs a previous process left behind; and on
exit stops recovery and the waker, then shuts the executor down gracefully so unfinished runs
are checkpointed and handed back. With
``executor = "celery"`` the executor only enqueues (``celery_executor``) and recovery
re-enqueues; ``run_parts`` (runner, bus, cache) is what a ``flowrunner worker`` shares.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from flowrunner.config import Settings
from flowrunner.executions.bus import EventBus, InProcessBus
from flowrunner.executions.cache import FlowCache
from flowrunner.executions.executor import Executor, LocalExecutor, default_owner
from flowrunner.executions.on_failure import FailureFlows
from flowrunner.executions.recovery import Recovery
from flowrunner.executions.runner import Runner, SecretsResolver
from flowrunner.executions.sealing import Keys
from flowrunner.executions.service import ExecutionService
from flowrunner.executions.sizes import RunLimits
from flowrunner.executions.subflows import SubflowHost
from flowrunner.executions.waits import ResumeLinks
from flowrunner.executions.waker import Waker
from flowrunner.plugins import NodeTypeRegistry
from flowrunner.scripting import Sandbox
from flowrunner.storage import Store
from flowrunner.webhooks.outbox import EventOutbox

if TYPE_CHECKING:
    from flowrunner.executions.redis_bus import RedisBus


@dataclass(frozen=True, slots=True)
class RunParts:
    """What runs executions in a process, whichever executor feeds it: an API process with
    the in-process executor, or a ``flowrunner worker``."""

    runner: Runner
    bus: EventBus
    redis_bus: RedisBus | None
    flows: FlowCache
    owner: str
    lease_ttl: timedelta
    resume_links: ResumeLinks | None
    on_failure: FailureFlows
    sandbox: Sandbox


@asynccontextmanager
async def run_parts(
    settings: Settings,
    store: Store,
    *,
    secrets: SecretsResolver | None = None,
    keys: Keys | None = None,
    registry: Callable[[], NodeTypeRegistry] | None = None,
    types: Callable[[str], Awaitable[NodeTypeRegistry]] | None = None,
    webhooks: EventOutbox | None = None,
    observe_bus: Callable[[EventBus], EventBus] | None = None,
    observe_sandbox: Callable[[Sandbox], None] | None = None,
) -> AsyncIterator[RunParts]:
    sandbox = Sandbox(
        workers=settings.script_workers,
        per_account=settings.script_workers_per_account(),
        timeout=settings.script_timeout,
        memory_mb=settings.script_memory_mb,
        recycle_after=settings.script_worker_max_evaluations,
        recycle_rss_mb=settings.script_worker_max_rss_mb,
        idle_seconds=settings.script_worker_idle_seconds,
    )
    bus: EventBus = InProcessBus()
    redis_bus: RedisBus | None = None
    if settings.event_bus_url:
        from flowrunner.executions.redis_bus import RedisBus  # optional dependency

        bus = redis_bus = RedisBus(
            settings.event_bus_url,
            timeout=settings.event_bus_timeout_seconds,
            buffer=settings.event_bus_buffer,
        )
    if observe_sandbox is not None:
        observe_sandbox(sandbox)
    if observe_bus is not None:
        bus = observe_bus(bus)  # metrics: runs and nodes counted off their published events
    ttl = timedelta(seconds=settings.lease_ttl_seconds)
    owner = default_owner()
    on_failure = FailureFlows(store)
    links = (
        ResumeLinks(keys, settings.public_url or f"http://{settings.host}:{settings.port}")
        if keys is not None
        else None
    )
    flows = FlowCache(scripts=sandbox, registry=registry, types=types, max_steps=settings.max_steps)
    runner = Runner(
        store,
        bus,
        flows,
        secrets=secrets,
        limits=RunLimits(
            node_output=settings.max_node_output_bytes,
            shared=settings.max_shared_bytes,
            checkpoint=settings.max_checkpoint_bytes,
        ),
        keys=keys,  # checkpoints holding a secret are sealed with the vault's keys
        max_resume_attempts=settings.max_resume_attempts,
        llm_token_budget=settings.llm_monthly_token_budget,
        webhooks=webhooks,
        on_failure=on_failure,
        resume_links=links,
        wait_threshold=settings.durable_wait_threshold_seconds,
        checkpoint_window=settings.checkpoint_window_seconds,
        # Child runs (stored sub-flows) run in their parent's task, leased by the same owner.
        subflows=SubflowHost(
            store, owner=owner, lease_ttl=ttl, max_depth=settings.max_subflow_depth
        ),
    )
    try:
        yield RunParts(runner, bus, redis_bus, flows, owner, ttl, links, on_failure, sandbox)
    finally:
        await sandbox.close()
        if redis_bus is not None:
            await redis_bus.close()


def unleased_after(settings: Settings) -> timedelta | None:
    """How old a never-leased run is before recovery takes it: with Celery, runs wait in the
    broker unleased, for up to ``queue_lease_seconds``; else the lease TTL."""
    if settings.executor == "celery":
        return timedelta(seconds=settings.queue_lease_seconds)
    return None


@asynccontextmanager
async def execution_runtime(
    settings: Settings,
    store: Store,
    *,
    secrets: SecretsResolver | None = None,
    keys: Keys | None = None,
    registry: Callable[[], NodeTypeRegistry] | None = None,
    types: Callable[[str], Awaitable[NodeTypeRegistry]] | None = None,
    webhooks: EventOutbox | None = None,
    observe_bus: Callable[[EventBus], EventBus] | None = None,
    observe_sandbox: Callable[[Sandbox], None] | None = None,
) -> AsyncIterator[ExecutionService]:
    async with run_parts(
        settings, store, secrets=secrets, keys=keys, registry=registry, types=types,
        webhooks=webhooks, observe_bus=observe_bus, observe_sandbox=observe_sandbox,
    ) as parts:  # fmt: skip
        executor: Executor
        if settings.executor == "celery":
            from flowrunner.executions.celery_executor import CeleryExecutor  # optional

            executor = CeleryExecutor.from_settings(settings, store, parts)
        else:
            executor = LocalExecutor(
                parts.runner,
                store.executions,
                concurrency=settings.executor_concurrency,
                per_account=settings.runs_per_account(),
                lease_ttl=parts.lease_ttl,
                owner=parts.owner,
            )
        recovery = Recovery(
            store.executions,
            executor,
            lease_ttl=parts.lease_ttl,
            interval=settings.recovery_interval_seconds,
            unleased_after=unleased_after(settings),
        )
        # Due durable waits are claimed for the executor: with Celery, re-enqueued for a worker.
        waker = Waker(
            store.executions, executor, lease_ttl=parts.lease_ttl, tick=settings.waker_tick_seconds
        )
        parts.on_failure.bind(executor.submit)
        service = ExecutionService(
            store,
            executor,
            parts.bus,
            max_input_bytes=settings.max_run_input_bytes,
            resume_links=parts.resume_links,
            # Created holding the lease of this process's executor; a worker takes its own.
            lease_ttl=None if settings.executor == "celery" else parts.lease_ttl,
            on_failure=parts.on_failure,
            sandbox=parts.sandbox,
        )
        recovery.start()  # its first sweep runs at once: runs a dead process left are resumed
        waker.start()
        try:
            yield service
        finally:
            await waker.stop()
            await recovery.stop()
            await executor.shutdown(settings.shutdown_grace_seconds)
