"""A scale-out cluster for end-to-end tests: API servers and ``flowrunner worker`` processes on
one PostgreSQL database, a broker (Redis or RabbitMQ) and the Redis event bus.

Every process is started here on 127.0.0.1 and always killed at the end. Each cluster has its
own database, its own queue names (so clusters of concurrent test runs sharing the RabbitMQ
server never take each other's tasks) and, for Redis, its own ``redis-server``. A test that
kills the broker asks for one of its own (``own_broker``): RabbitMQ's is then a private node
(``tests.rabbitmq_server``), never the shared one.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from cryptography.fernet import Fernet
from sqlalchemy.engine import make_url

from flowrunner.storage.sql.migrate import upgrade
from tests.conftest import HANG_GUARD, require_service, run_async
from tests.e2e.server import ADMIN, Server
from tests.rabbitmq_server import RabbitServer, rabbitmq_server
from tests.redis_server import RedisServer, redis_server
from tests.storage.conftest import scratch_postgres_database


class Worker:
    """One ``flowrunner worker`` process; ``kill`` is ``kill -9``."""

    def __init__(self, env: dict[str, str], log: Path, args: list[str]) -> None:
        self.env = env
        self.log = log
        self.args = args
        self.process: subprocess.Popen[bytes] | None = None
        self._terminated = False

    def start(self) -> None:
        command = [sys.executable, "-m", "flowrunner", "worker", *self.args]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                command, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        self._terminated = False

    def ready(self, timeout: float = HANG_GUARD) -> None:
        """Until Celery says it consumes (its 'ready' line)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited: {self.log.read_text()[-3000:]}")
            if "ready." in self.log.read_text(errors="replace"):
                return
            time.sleep(0.1)
        raise RuntimeError(f"worker did not start: {self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def terminate(self) -> None:
        """SIGTERM (Celery's warm shutdown) once, without waiting; ``stop`` waits."""
        if self.process is not None and self.process.poll() is None and not self._terminated:
            self.process.terminate()
            self._terminated = True

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None


class Cluster:
    """``api(...)`` servers and ``worker(...)`` processes sharing one configuration.

    Each waits until its process is ready, unless told ``ready=False``: then ``ready()``
    waits for all of them, which meanwhile start side by side (seconds each).
    """

    def __init__(
        self,
        root: Path,
        settings: dict[str, Any],
        stack: ExitStack,
        *,
        bus: RedisServer,
        broker: RedisServer | RabbitServer | None,
    ) -> None:
        self.bus = bus
        self.broker = broker  # the test's own broker (None: the shared RabbitMQ)
        self.root = root
        self.settings = settings
        self._stack = stack
        self._servers: list[Server] = []
        self._worker_list: list[Worker] = []
        self.key = Fernet.generate_key().decode()

    def env(self, **extra: Any) -> dict[str, str]:
        values = {**self.settings, **extra}
        return {
            **os.environ,
            "FLOWRUNNER_DATA_DIR": str(self.root),
            "FLOWRUNNER_SECRET_KEYS": self.key,
            "FLOWRUNNER_ADMIN_USERNAME": ADMIN[0],
            "FLOWRUNNER_ADMIN_PASSWORD": ADMIN[1],
            **{f"FLOWRUNNER_{k.upper()}": str(v) for k, v in values.items()},
        }

    def api(self, *, ready: bool = True, **extra: Any) -> Server:
        data = self.root / f"api-{os.urandom(2).hex()}"
        data.mkdir()
        server = Server(data, **{**self.settings, **extra})
        server.env.update(self.env(**extra))
        server.env["FLOWRUNNER_DATA_DIR"] = str(data)
        self._stack.callback(server.stop)
        self._servers.append(server)
        server.spawn()
        if ready:
            server.ready()
        return server

    def worker(self, *args: str, ready: bool = True, **extra: Any) -> Worker:
        log = self.root / f"worker-{len(self._worker_list) + 1}.log"
        worker = Worker(self.env(**extra), log, list(args))
        self._stack.callback(worker.stop)
        self._worker_list.append(worker)
        worker.start()
        if ready:
            worker.ready()
        return worker

    def ready(self) -> None:
        """Until every running process of the cluster is ready."""
        for server in self._servers:
            if server.process is not None:
                server.ready()
        for worker in self._worker_list:
            if worker.process is not None:
                worker.ready()

    def terminate(self) -> None:
        """SIGTERM to every process at once: they shut down side by side, then the stack
        waits for each."""
        for worker in self._worker_list:
            worker.terminate()
        for server in self._servers:
            server.terminate()


@contextmanager
def cluster(
    root: Path, broker: str, *, own_broker: bool = False, **settings: Any
) -> Iterator[Cluster]:
    """A fresh database and bus (and broker: always for Redis, with ``own_broker`` for
    RabbitMQ), with ``settings`` for every process."""
    server = require_service("FLOWRUNNER_TEST_POSTGRES_URL", "PostgreSQL")
    with ExitStack() as stack:
        database = stack.enter_context(_database(server))
        bus = stack.enter_context(redis_server())
        queue = f"flowrunner-test-{os.getpid()}-{os.urandom(3).hex()}"
        broker_server: RedisServer | RabbitServer | None = None
        if broker == "rabbitmq" and own_broker:
            broker_server = stack.enter_context(rabbitmq_server(root / "broker"))
            broker_url = broker_server.url
        elif broker == "redis":
            # A broker of its own, durable like a production one (tests stop and restart it).
            (root / "broker").mkdir()
            broker_server = stack.enter_context(redis_server(durable_in=root / "broker"))
            broker_url = broker_server.url
        else:
            broker_url = require_service("FLOWRUNNER_TEST_RABBITMQ_URL", "RabbitMQ")
            stack.callback(delete_queues, broker_url, queue)
        values = {
            "storage": "postgres",
            "database_url": database,
            "executor": "celery",
            "broker_url": broker_url,
            "event_bus_url": bus.url,
            "default_queue": queue,
            "lease_ttl_seconds": 2,
            "recovery_interval_seconds": 0.5,
            "scheduler_enabled": "false",
            **settings,
        }
        made = Cluster(root, values, stack, bus=bus, broker=broker_server)
        try:
            yield made
        finally:
            made.terminate()


@contextmanager
def _database(server: str) -> Iterator[str]:
    yield from scratch_postgres_database(server, migrate=False, template=_migrated(server))


_TEMPLATES: dict[str, str] = {}


def _migrated(server: str) -> str:
    """The name of a database migrated to head once per test process, dropped at its exit:
    copying it costs a fraction of migrating each cluster's database from scratch."""
    if server not in _TEMPLATES:
        name = f"flowrunner_template_{os.getpid()}_{os.urandom(3).hex()}"
        run_async(_admin, server, f'CREATE DATABASE "{name}"')
        atexit.register(_drop, server, name)
        run_async(upgrade, make_url(server).set(database=name).render_as_string(False))
        _TEMPLATES[server] = name
    return _TEMPLATES[server]


async def _admin(server: str, sql: str) -> None:
    conn = await asyncpg.connect(
        make_url(server).set(drivername="postgresql").render_as_string(False)
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _drop(server: str, name: str) -> None:
    # At exit no thread may start (run_async's): this loop runs on the main thread.
    asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def delete_queues(url: str, *prefixes: str) -> None:
    """Remove the queues a test declared (RabbitMQ keeps them after their consumers left)."""
    from kombu.connection import Connection

    with Connection(url) as connection:
        channel = connection.channel()
        for name in prefixes:
            for suffix in ("", "-heavy"):
                channel.queue_delete(name + suffix)


# --- following runs through an API server of the cluster ---------------------------------


async def until(
    fetch: Callable[[], Awaitable[Any]], check: Callable[[Any], bool], what: str
) -> Any:
    """``fetch()`` again until ``check`` holds (a hang guard, not a time bound)."""
    deadline = asyncio.get_running_loop().time() + HANG_GUARD * 2
    while True:
        value = await fetch()
        if check(value):
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"still waiting for {what}: {value}")
        await asyncio.sleep(0.1)


async def execution(client: httpx.AsyncClient, execution_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/executions/{execution_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def ended(client: httpx.AsyncClient, execution_id: str) -> dict[str, Any]:
    result: dict[str, Any] = await until(
        lambda: execution(client, execution_id),
        lambda e: e["status"] in ("completed", "failed", "canceled"),
        f"{execution_id} to end",
    )
    return result


async def events(client: httpx.AsyncClient, execution_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/api/v1/executions/{execution_id}/events")
    frames = [f for f in response.text.split("\n\n") if f.strip()]
    return [json.loads(f.split("data: ", 1)[1]) for f in frames]
