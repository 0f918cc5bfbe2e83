"""Scale-out end to end: API servers enqueue, ``flowrunner worker`` processes run, over real
PostgreSQL, a real broker (Redis or RabbitMQ) and the Redis event bus (docs/deploy.md)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import HANG_GUARD
from tests.e2e.cluster import cluster, ended, events, execution, until
from tests.e2e.server import create_flow, start_run

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

BROKERS = ["redis", "rabbitmq"]
# Where the broker makes no difference to what a test checks (the cancel goes over the Redis
# event bus, outputs come back through storage), one broker: RabbitMQ, since the tests further
# down run on Redis. The kill -9 and broker outage tests keep both: what the broker does differs.
ONE_BROKER = "rabbitmq"

STEPS = """metadata: {name: Steps}
nodes:
  one: {type: set, params: {values: {a: "${input.n}"}}, next: {default: two}}
  two: {type: set, params: {values: {b: 2}}, next: {default: three}}
  three: {type: set, params: {values: {total: "${shared.a * 10 + shared.b}"}}}
"""

# Each node naps: a worker can be killed (or a cancel land) while a run is between nodes.
NAPS = """metadata: {name: Naps}
nodes:
  n1: {type: delay, params: {duration: "%(nap)s"}, next: {default: n2}}
  n2: {type: delay, params: {duration: "%(nap)s"}, next: {default: n3}}
  n3: {type: delay, params: {duration: "%(nap)s"}, next: {default: n4}}
  n4: {type: delay, params: {duration: "%(nap)s"}, next: {default: done}}
  done: {type: set, params: {values: {done: true}}}
"""


async def test_runs_through_two_workers_complete_with_their_outputs(tmp_path: Path) -> None:
    with cluster(tmp_path, ONE_BROKER) as made:
        api = made.api(ready=False)
        made.worker("--concurrency", "2", ready=False)
        made.worker("--concurrency", "2", ready=False)
        made.ready()
        async with api.client() as client:
            flow_id = await create_flow(client, STEPS)
            ids = [await start_run(client, flow_id, {"n": n}) for n in range(12)]
            done = [await ended(client, i) for i in ids]
            assert [d["status"] for d in done] == ["completed"] * 12
            assert [d["output"] for d in done] == [{"total": n * 10 + 2} for n in range(12)]
            # Run by the workers, not the API process: their lease owners are other processes.
            history = await events(client, ids[0])
            assert [e["seq"] for e in history] == list(range(1, len(history) + 1))
            # ?wait on the API follows a run a worker executes.
            waited = await client.post(
                f"/api/v1/flows/{flow_id}/run?wait=30s", json={"input": {"n": 4}}
            )
            assert waited.status_code == 200, waited.text
            assert waited.json()["output"] == {"total": 42}


PATH = ["n1", "n2", "n3", "n4", "done"]


@pytest.mark.parametrize("broker", BROKERS)
async def test_a_worker_killed_mid_run_leaves_its_runs_to_the_other_which_resumes_them(
    tmp_path: Path, broker: str
) -> None:
    with cluster(tmp_path, broker) as made:
        api = made.api(ready=False)
        doomed = made.worker("--concurrency", "2", ready=False)
        made.worker("--concurrency", "2", ready=False)
        made.ready()
        async with api.client() as client:
            flow_id = await create_flow(client, NAPS % {"nap": "2s"})
            ids = [await start_run(client, flow_id, {"n": n}) for n in range(4)]

            async def current() -> list[dict[str, Any]]:
                return [await execution(client, i) for i in ids]

            # Prefetch 1: each worker holds two runs at most, so the doomed one has two.
            await until(
                current,
                lambda runs: all(r["current_node"] in ("n2", "n3") for r in runs),
                "every run past its first node",
            )
            doomed.kill()
            done = [await ended(client, i) for i in ids]
            assert [d["status"] for d in done] == ["completed"] * 4
            resumed = 0
            for execution_id in ids:
                history = await events(client, execution_id)
                assert [e["seq"] for e in history] == list(range(1, len(history) + 1))
                finished = [
                    e["data"]["node_id"] for e in history if e["data"].get("state") == "finished"
                ]
                assert set(finished) == set(PATH)  # each node at least once
                marks = [e for e in history if e["data"].get("resumed")]
                if marks:
                    resumed += 1
                    start = marks[0]["data"]["from_node"] or PATH[0]
                    cut = history.index(marks[0])
                    after = [
                        e["data"]["node_id"]
                        for e in history[cut:]
                        if e["data"].get("state") == "started"
                    ]
                    assert after == PATH[PATH.index(start) :]  # from its checkpoint on
            assert resumed == 2  # the doomed worker's two runs


async def test_a_cancel_on_the_api_stops_the_node_running_on_a_worker(tmp_path: Path) -> None:
    # The hour-long nap stays a running node (not a durable wait, which holds no worker).
    with cluster(tmp_path, ONE_BROKER, durable_wait_threshold_seconds=86400) as made:
        api = made.api(ready=False)
        worker = made.worker("--concurrency", "2", ready=False)
        made.ready()
        async with api.client() as client:
            flow_id = await create_flow(client, NAPS % {"nap": "1h"})
            run_id = await start_run(client, flow_id, {})
            await until(
                lambda: execution(client, run_id),
                lambda run: run["status"] == "running",
                "the first nap to start",
            )
            canceled = await client.post(f"/api/v1/executions/{run_id}/cancel")
            assert canceled.status_code == 200, canceled.text
            assert canceled.json()["status"] == "canceled"
            history = await events(client, run_id)
            assert history[-1]["type"] == "status"
            assert history[-1]["data"]["status"] == "canceled"
            # The hour-long nap was interrupted where it ran: by the worker, told over Redis.
            assert not any(e["data"].get("state") == "finished" for e in history)
        log = worker.log.read_text()
        assert "cancel requested from another process" in log
        assert (
            "did not stop a canceled run in time" not in (api.data_dir / "server.log").read_text()
        )


SLEEPS = """metadata: {name: Sleeps an hour}
nodes:
  start: {type: set, params: {values: {n: "${input.n}"}}, next: {default: nap}}
  nap: {type: delay, params: {duration: 1h}}
"""

ONE_NODE = """metadata: {name: One node}
nodes:
  only: {type: set, params: {values: {done: true}}}
"""


async def _account(api: Any, admin: httpx.AsyncClient, name: str) -> httpx.AsyncClient:
    created = await admin.post(
        "/api/v1/accounts", json={"username": name, "password": "password-123"}
    )
    assert created.status_code == 201, created.text
    login = await admin.post("/api/v1/login", json={"username": name, "password": "password-123"})
    headers = {"Authorization": f"Bearer {login.json()['token']}"}
    return httpx.AsyncClient(base_url=api.url, headers=headers, timeout=HANG_GUARD)


async def _count(client: httpx.AsyncClient, flow_id: str, status: str) -> int:
    """Runs of ``flow_id`` in ``status`` (pages of 100 followed to the end)."""
    total, cursor = 0, None
    while True:
        params: dict[str, Any] = {"flow_id": flow_id, "status": status, "limit": 100}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/api/v1/executions", params=params)).json()
        total += len(page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return total


async def test_an_account_with_500_runs_waiting_does_not_hold_back_another_accounts_run(
    tmp_path: Path,
) -> None:
    many = 500
    # Hour-long naps that stay running nodes: a durable wait would give its slot back.
    with cluster(
        tmp_path, "redis", cluster_max_runs_per_account=2, shutdown_grace_seconds=1,
        durable_wait_threshold_seconds=86400,
    ) as made:  # fmt: skip
        api = made.api(ready=False)
        made.worker("--concurrency", "2", ready=False)
        made.worker("--concurrency", "2", ready=False)
        made.ready()
        async with api.client() as admin:
            a = await _account(api, admin, "account-a")
            b = await _account(api, admin, "account-b")
        async with a, b:
            slow = await create_flow(a, SLEEPS)
            gate = asyncio.Semaphore(8)

            async def submit(n: int) -> str:
                async with gate:
                    return await start_run(a, slow, {"n": n})

            await asyncio.gather(*(submit(n) for n in range(many)))
            await until(
                lambda: _count(a, slow, "running"), lambda n: n == 2, "account A at its limit"
            )
            quick = await create_flow(b, ONE_NODE)
            b_run = await start_run(b, quick, {})  # behind A's 500 in the broker
            done = await ended(b, b_run)
            assert done["status"] == "completed"
            # A holds its two slots of the four, the rest of its runs wait without a worker.
            assert await _count(a, slow, "running") == 2
            assert await _count(a, slow, "queued") == many - 2
        logs = [w.read_text() for w in made.root.glob("worker-*.log")]
        # Each waiting run was parked (in Redis, its message acknowledged), not kept busy.
        assert sum(log.count("run parked: cluster limit reached") for log in logs) >= many - 2


# A hang guard: a private RabbitMQ node boots twice (seconds each on a busy machine).
@pytest.mark.timeout(300)
@pytest.mark.parametrize("broker", BROKERS)
async def test_runs_survive_the_broker_being_killed_for_a_few_seconds(
    tmp_path: Path, broker: str
) -> None:
    # A broker of the test's own (for RabbitMQ a private node, never the shared one).
    with cluster(tmp_path, broker, own_broker=True) as made:
        api = made.api(ready=False)
        made.worker("--concurrency", "4", ready=False)
        made.ready()
        assert made.broker is not None
        async with api.client() as client:
            flow_id = await create_flow(client, NAPS % {"nap": "1s"})
            before = [await start_run(client, flow_id, {"n": n}) for n in range(4)]
            await until(
                lambda: execution(client, before[0]),
                lambda run: run["status"] == "running",
                "the first run to start",
            )
            # kill -9: Redis keeps queued messages in its append-only file, RabbitMQ the
            # persistent messages it confirmed, in durable queues.
            made.broker.stop()
            # Accepted while the broker is down: kept by the API and published once it is back.
            during = [await start_run(client, flow_id, {"n": n}) for n in range(4, 8)]
            # The API answers meanwhile: reads, and follows of runs the worker still runs.
            assert (await client.get("/healthz")).status_code == 200
            assert (await execution(client, before[0]))["status"] in ("running", "completed")
            await asyncio.sleep(3)  # the outage: nothing to wait for, it is the scenario
            made.broker.start()  # the same port and data
            done = [await ended(client, i) for i in before + during]
            assert [d["status"] for d in done] == ["completed"] * 8
            for execution_id in before + during:
                history = await events(client, execution_id)
                assert [e["seq"] for e in history] == list(range(1, len(history) + 1))
                # Run once: no node started twice, nothing resumed (the worker never died;
                # a message the broker gave again found its run leased or ended).
                started = [
                    e["data"]["node_id"] for e in history if e["data"].get("state") == "started"
                ]
                assert started == PATH
                assert not any(e["data"].get("resumed") for e in history)
        assert "broker refused a run" in (api.data_dir / "server.log").read_text()


ROUTED = """metadata: {name: Heavy, queue: %(queue)s}
nodes:
  only: {type: set, params: {values: {heavy: true}}}
"""


async def _ws_until_final(ws: Any) -> dict[str, list[dict[str, Any]]]:
    seen: dict[str, list[dict[str, Any]]] = {"run": [], "flow": []}
    async with asyncio.timeout(HANG_GUARD):
        while not any(
            e["data"].get("status") in ("completed", "failed", "canceled")
            or e["type"] == "complete"
            for e in seen["run"]
        ):
            message = json.loads(await ws.recv())
            if "seq" in message:
                seen["flow" if "flow_id" in message else "run"].append(message)
    return seen


async def test_a_websocket_on_one_api_process_follows_a_run_a_worker_executes_for_another(
    tmp_path: Path,
) -> None:
    import websockets

    with cluster(tmp_path, "redis") as made:
        starter, watcher = made.api(ready=False), made.api(ready=False)
        made.worker("--concurrency", "2", ready=False)
        made.ready()
        async with starter.client() as client:
            flow_id = await create_flow(client, NAPS % {"nap": "0.3s"})
            token = watcher.token()
            async with websockets.connect(f"{watcher.ws_url}?token={token}") as ws:
                await ws.send(json.dumps({"type": "subscribe", "flow_id": flow_id}))
                subscribed = json.loads(await ws.recv())
                assert subscribed["type"] == "subscribed", subscribed
                run_id = await start_run(client, flow_id, {})
                await ws.send(json.dumps({"type": "subscribe", "execution_id": run_id}))
                seen = await _ws_until_final(ws)
            stored = await events(client, run_id)
            # A flow subscription that reconnects with a cursor gets what it missed, then live.
            async with websockets.connect(f"{starter.ws_url}?token={token}") as ws:
                await ws.send(json.dumps({"type": "subscribe", "flow_id": flow_id, "since": 1}))
                refused = json.loads(await ws.recv())
                assert refused["error"]["code"] == "bad_request", refused
                cursor = {"since": stored[0]["time"], "after": {run_id: 2}}
                await ws.send(json.dumps({"type": "subscribe", "flow_id": flow_id, **cursor}))
                assert json.loads(await ws.recv())["type"] == "subscribed"
                replayed: list[dict[str, Any]] = []
                async with asyncio.timeout(HANG_GUARD):
                    while not replayed or replayed[-1]["type"] != "complete":
                        replayed.append(json.loads(await ws.recv()))
            assert [e["seq"] for e in replayed] == [e["seq"] for e in stored[2:]]
        run = seen["run"]
        assert [e["seq"] for e in run] == list(range(1, len(run) + 1))
        assert run == [{k: v for k, v in e.items()} for e in stored]
        assert run[-1]["type"] == "complete"
        # The flow's subscription got the worker's events live, in order.
        flow_seqs = [e["seq"] for e in seen["flow"] if e["execution_id"] == run_id]
        assert flow_seqs
        assert flow_seqs == sorted(flow_seqs)


async def test_a_flow_naming_a_queue_runs_only_on_the_workers_of_that_queue(
    tmp_path: Path,
) -> None:
    with cluster(tmp_path, "redis") as made:
        queue = made.settings["default_queue"]
        api = made.api(ready=False)
        general = made.worker("--concurrency", "1", ready=False)
        heavy = made.worker("--concurrency", "1", "--queues", f"{queue}-heavy", ready=False)
        made.ready()
        async with api.client() as client:
            routed = await create_flow(client, ROUTED % {"queue": f"{queue}-heavy"})
            plain = await create_flow(client, ONE_NODE)
            heavy_runs = [await start_run(client, routed, {}) for _ in range(3)]
            plain_runs = [await start_run(client, plain, {}) for _ in range(3)]
            for run_id in heavy_runs + plain_runs:
                assert (await ended(client, run_id))["status"] == "completed"
        heavy_log, general_log = heavy.log.read_text(), general.log.read_text()
        assert all(r in heavy_log and r not in general_log for r in heavy_runs)
        assert all(r in general_log and r not in heavy_log for r in plain_runs)


EVERY_SECOND = """metadata:
  name: Every second
  webhooks: [{url: "%(url)s", events: [execution.completed]}]
triggers:
  - schedule: {interval: 1s}
nodes:
  say: {type: set, params: {values: {at: "${input.trigger.occurrence}"}}}
"""


async def test_two_api_processes_and_workers_fire_each_occurrence_and_send_each_delivery_once(
    tmp_path: Path,
) -> None:
    from collections import Counter

    from tests.webhook_receiver import receiving

    with (
        receiving() as receiver,
        cluster(
            tmp_path, "redis", scheduler_enabled="true", http_allow="127.0.0.1",
            webhook_poll_seconds="0.1",
        ) as made,
    ):  # fmt: skip
        first, second = made.api(ready=False), made.api(ready=False)
        made.worker("--concurrency", "2", ready=False)
        made.worker("--concurrency", "2", ready=False)
        made.ready()
        async with first.client() as client:
            flow_id = await create_flow(client, EVERY_SECOND % {"url": f"{receiver.url}/hook"})

            async def completed() -> int:
                return await _count(client, flow_id, "completed")

            await until(completed, lambda n: n >= 5, "five scheduled runs")
            await client.delete(f"/api/v1/flows/{flow_id}")  # stops the schedule
            page = await client.get(
                "/api/v1/executions", params={"flow_id": flow_id, "limit": 1000}
            )
            runs = page.json()["items"]
            done = [r for r in runs if r["status"] == "completed"]
            await until(
                lambda: asyncio.sleep(0, len(receiver.received)),
                lambda n: n >= len(done),
                "a delivery per completed run",
            )
        assert second.process is not None  # both API processes ran their schedulers
    occurrences = Counter(r["input"]["trigger"]["occurrence"] for r in runs)
    assert set(occurrences.values()) == {1}, occurrences
    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert len(ids) == len(set(ids))  # no delivery sent twice
