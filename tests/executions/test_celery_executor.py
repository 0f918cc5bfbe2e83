"""The API side of the Celery executor, against a real Redis broker: where a run's task goes,
and that a task the broker refused is published once it is back."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis import asyncio as aioredis

from flowrunner.config import Settings
from flowrunner.errors import ExecutionError
from flowrunner.executions.celery_app import celery_app
from flowrunner.executions.celery_executor import CeleryExecutor
from flowrunner.executions.runtime import run_parts
from flowrunner.storage import Account, Store
from tests.executions.conftest import eventually
from tests.redis_server import RedisServer, redis_server

ROUTED = "metadata: {name: Heavy, queue: heavy}\nnodes:\n  a: {type: set, params: {values: {}}}\n"
PLAIN = "metadata: {name: Plain}\nnodes:\n  a: {type: set, params: {values: {}}}\n"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(durable_in=tmp_path) as server:
        yield server


@pytest.fixture
async def executor(broker: RedisServer, store: Store) -> AsyncIterator[CeleryExecutor]:
    settings = Settings(
        executor="celery", broker_url=broker.url, event_bus_url=broker.url, default_queue="runs"
    )
    async with run_parts(settings, store) as parts:
        made = CeleryExecutor.from_settings(settings, store, parts)
        yield made
        await made.shutdown(0)


async def _flow(store: Store, account: Account, yaml: str) -> str:
    flow = await store.flows.create(account.id, name="test")
    await store.flows.add_version(account.id, flow.id, yaml=yaml)
    return flow.id


async def _queued(url: str, queue: str) -> list[str]:
    client = aioredis.from_url(url)
    try:
        items = await client.lrange(queue, 0, -1)
        return [m.decode() if isinstance(m, bytes) else m for m in items]
    finally:
        await client.aclose()


async def test_a_run_is_enqueued_on_its_flows_queue_unleased(
    executor: CeleryExecutor, store: Store, account: Account, broker: RedisServer
) -> None:
    heavy = await store.executions.create(
        account.id, flow_id=await _flow(store, account, ROUTED), flow_version=1, input={}
    )
    plain = await store.executions.create(
        account.id, flow_id=await _flow(store, account, PLAIN), flow_version=1, input={}
    )
    assert await executor.submit(heavy)
    assert await executor.submit(plain)
    (on_heavy,) = await _queued(broker.url, "heavy")
    (on_default,) = await _queued(broker.url, "runs")
    assert heavy.id in on_heavy
    assert plain.id in on_default
    # Waiting in the broker holds no lease: a worker takes the run in one write.
    assert (await store.executions.get(account.id, heavy.id)).lease_owner is None


async def test_a_run_the_broker_refused_is_published_once_it_is_back(
    executor: CeleryExecutor, store: Store, account: Account, broker: RedisServer
) -> None:
    run = await store.executions.create(
        account.id, flow_id=await _flow(store, account, PLAIN), flow_version=1, input={}
    )
    broker.stop()
    assert await executor.submit(run)  # accepted: kept until the broker answers
    broker.start()

    async def arrived() -> bool:
        return any(run.id in m for m in await _queued(broker.url, "runs"))

    await eventually(arrived, "the kept task to be published")


def test_the_celery_executor_needs_a_broker_and_the_redis_bus() -> None:
    with pytest.raises(ExecutionError, match="FLOWRUNNER_BROKER_URL"):
        celery_app(Settings(executor="celery", event_bus_url="redis://127.0.0.1:1/0"))
    with pytest.raises(ExecutionError, match="FLOWRUNNER_EVENT_BUS_URL"):
        celery_app(Settings(executor="celery", broker_url="amqp://127.0.0.1:1//"))
