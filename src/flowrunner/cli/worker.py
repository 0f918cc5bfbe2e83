"""``flowrunner worker``: a Celery worker that runs executions (docs/deploy.md).

It builds the same run machinery an API process has (store, vault, plugins, webhook outbox,
runner) on one asyncio loop thread, then hands the main thread to Celery's worker with the
``threads`` pool: each Celery thread runs one task, which blocks until its run ended
(``executions.worker``). SIGTERM is Celery's warm shutdown: runs are stopped at their next
checkpoint within ``shutdown_grace_seconds`` and their messages given back to the broker.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from contextlib import AsyncExitStack

    from flowrunner.config import Settings
    from flowrunner.executions.worker import LoopThread, WorkerHost

# The levels Celery's worker accepts (its --loglevel choices).
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def register(app: typer.Typer) -> None:
    app.command(
        "worker",
        epilog="Example: FLOWRUNNER_EXECUTOR=celery FLOWRUNNER_BROKER_URL=redis://127.0.0.1:6379/1"
        " flowrunner worker --concurrency 8 --queues flowrunner,heavy",
    )(worker)


def worker(
    concurrency: Annotated[
        int | None,
        typer.Option(min=1, help="Runs at once in this process (default: executor_concurrency)."),
    ] = None,
    queues: Annotated[
        str | None,
        typer.Option(
            "--queues",
            "-Q",
            help="Comma-separated Celery queues to take runs from (default:"
            " the default queue). Flows name theirs with `queue:` in their metadata.",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="TOML settings file (keys under a flowrunner table)."),
    ] = None,
    log_level: Annotated[str, typer.Option(help="Log level.")] = "info",
) -> None:
    """Run executions from the broker (FLOWRUNNER_BROKER_URL) until stopped."""
    # Imported here, like every command's machinery: `flowrunner --help` loads only the CLI.
    import os
    import re
    from contextlib import AsyncExitStack

    from celery.exceptions import Reject
    from celery.signals import worker_shutting_down
    from celery.utils.log import mlevel
    from celery.utils.nodenames import default_nodename, host_format

    from flowrunner.config import QUEUE_PATTERN, load_settings
    from flowrunner.executions.celery_app import RUN_TASK, celery_app
    from flowrunner.executions.worker import LoopThread, Outcome
    from flowrunner.logging import configure_logging

    settings = load_settings(config, executor="celery")
    names = [q.strip() for q in (queues or settings.default_queue).split(",") if q.strip()]
    if not names or not all(re.fullmatch(QUEUE_PATTERN, name) for name in names):
        raise typer.BadParameter(f"queue names match {QUEUE_PATTERN}", param_hint="--queues")
    threads = concurrency or settings.executor_concurrency
    level = log_level.upper()
    if level not in LOG_LEVELS:
        raise typer.BadParameter(f"one of {', '.join(LOG_LEVELS)}", param_hint="--log-level")
    configure_logging(log_level)
    app = celery_app(settings)  # refuses settings without a broker or a Redis event bus
    loop = LoopThread()
    loop.start()
    stack = AsyncExitStack()
    try:
        host = loop.call(_open(settings, threads, stack))

        @app.task(name=RUN_TASK)  # type: ignore[untyped-decorator]
        def run(account_id: str, execution_id: str) -> str:
            outcome = loop.call(host.handle(account_id, execution_id))
            if outcome is Outcome.HANDED_BACK:
                raise Reject("the worker is stopping", requeue=True)
            return str(outcome.value)

        def hand_back(**_: Any) -> None:
            # Celery stops taking messages and waits for its tasks: have them end at the next
            # checkpoint (within the grace period) instead of running to completion.
            loop.submit(host.local.shutdown(settings.shutdown_grace_seconds))

        worker_shutting_down.connect(hand_back, weak=False)
        # The worker `celery worker` would start, built directly: that command's click CLI
        # imports click-repl and prompt_toolkit (~0.1 s and ~8 MB a worker) for a shell no
        # worker uses. The arguments are the ones its options convert to.
        worker = app.Worker(
            hostname=host_format(default_nodename(f"flowrunner-{os.getpid()}@%h")),
            pool_cls="threads",
            concurrency=threads,
            queues=names,
            loglevel=mlevel(level),
            without_gossip=True,
            without_mingle=True,
            without_heartbeat=True,
        )
        worker.start()
        if worker.exitcode:
            raise typer.Exit(worker.exitcode)
    finally:
        _close(loop, stack)


async def _open(settings: Settings, threads: int, stack: AsyncExitStack) -> WorkerHost:
    import asyncio

    from flowrunner.api.plugin_choices import PluginChoices
    from flowrunner.audit import AuditLog
    from flowrunner.custom_types import CustomTypes
    from flowrunner.executions.executor import default_owner
    from flowrunner.executions.runtime import run_parts
    from flowrunner.executions.worker import WorkerHost
    from flowrunner.nodes.connections import close_connections
    from flowrunner.plugins import plugin_manager
    from flowrunner.secrets import Keyring, SecretVault
    from flowrunner.storage import open_store
    from flowrunner.webhooks import webhook_runtime

    store = await open_store(settings)
    stack.push_async_callback(store.close)
    keyring = Keyring.from_settings(settings)
    await keyring.verify(store)
    audit = AuditLog(store)
    vault = SecretVault(store, keyring, audit)
    plugins = await asyncio.to_thread(plugin_manager, settings)
    # The admin's plugin choices and the accounts' own node types, as an API process has them.
    await asyncio.to_thread(plugins.apply_choices, await PluginChoices(store).load())
    node_types = CustomTypes(
        store, audit, plugins.current, max_script_bytes=settings.max_script_bytes
    )
    hooks = await stack.enter_async_context(
        webhook_runtime(
            settings,
            store,
            keyring,
            worker=default_owner(),
            secrets=vault.resolve_all,
            audit=audit,
        )
    )
    stack.push_async_callback(close_connections)  # nodes' pools (database, MCP), after the runs
    parts = await stack.enter_async_context(
        run_parts(
            settings,
            store,
            secrets=vault.resolve_all,
            keys=keyring,
            registry=plugins.current,
            types=node_types.registry_for,
            webhooks=hooks.outbox,
        )
    )
    host = WorkerHost(settings, store, parts, concurrency=threads)
    await host.start()
    stack.push_async_callback(host.stop, settings.shutdown_grace_seconds)
    return host


def _close(loop: LoopThread, stack: AsyncExitStack) -> None:
    try:
        loop.call(stack.aclose())
    finally:
        loop.stop()
