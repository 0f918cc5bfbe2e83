"""``/metrics`` of a real ``flowrunner serve``: access, and counters that move with runs —
in one process and summed over ``serve --workers 2``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.conftest import HANG_GUARD
from tests.e2e.server import Server, create_flow, finished_run, start_run
from tests.http_server import running_server

pytestmark = pytest.mark.slow

SCRAPE_TOKEN = "scrape-only-9f2c"
FLOW = """metadata: {name: Counted}
nodes:
  one: {type: set, params: {values: {n: "${input.n}"}}, next: {default: two}}
  two:
    type: condition
    params: {condition_script: "return input.n >= 0;"}
    next: {"true": three, "false": boom}
  three: {type: transform, params: {script: "const ok = input.n > 0; return {ok};"}}
  boom: {type: fail, params: {message: negative}}
"""


def samples(text: str) -> list[Sample]:
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def value(found: Iterable[Sample], name: str, **labels: str) -> float:
    return sum(
        s.value
        for s in found
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


async def scrape(url: str) -> list[Sample]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        answer = await http.get("/metrics", headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return samples(answer.text)


async def test_metrics_need_the_scrape_token_or_an_admin_and_count_runs(tmp_path: Path) -> None:
    with Server(tmp_path, metrics_token=SCRAPE_TOKEN) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as anonymous:
            assert (await anonymous.get("/metrics")).status_code == 401
            wrong = await anonymous.get("/metrics", headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401
        async with server.client() as http:
            assert (await http.get("/metrics")).status_code == 200  # an admin's token
            created = await http.post(
                "/api/v1/accounts",
                json={"username": "viewer", "password": "a-long-password-1"},
            )
            assert created.status_code == 201, created.text
            login = await http.post(
                "/api/v1/login", json={"username": "viewer", "password": "a-long-password-1"}
            )
            plain = {"Authorization": f"Bearer {login.json()['token']}"}
            assert (await http.get("/metrics", headers=plain)).status_code == 403

            flow_id = await create_flow(http, FLOW)
            for n in (1, 2, -1):
                run = await http.post(
                    f"/api/v1/flows/{flow_id}/run?wait=30s", json={"input": {"n": n}}
                )
                assert run.status_code == 200, run.text
            found = await scrape(server.url)
            # Gauges are sampled every second: the sandbox's worker shows up on a later scrape.
            while value(await scrape(server.url), "flowrunner_sandbox_workers") < 1:  # noqa: ASYNC110
                await asyncio.sleep(0.2)

    assert value(found, "flowrunner_runs_started_total", flow=flow_id) == 3
    assert value(found, "flowrunner_runs_finished_total", flow=flow_id, status="completed") == 2
    assert value(found, "flowrunner_runs_finished_total", flow=flow_id, status="failed") == 1
    assert value(found, "flowrunner_run_duration_seconds_count", status="completed") == 2
    assert value(found, "flowrunner_runs_in_flight") == 0
    # one, two, three twice; one, two, boom once: 8 node ends, one of them failed.
    assert value(found, "flowrunner_node_duration_seconds_count", state="finished") == 8
    assert value(found, "flowrunner_node_duration_seconds_count", state="failed") == 1
    route = "/api/v1/flows/{flow_id}/run"
    assert value(found, "flowrunner_http_requests_total", route=route, status="200") == 3
    assert value(found, "flowrunner_http_requests_total", route="/metrics", status="401") == 2
    assert value(found, "flowrunner_http_request_duration_seconds_count", route=route) == 3
    assert value(found, "flowrunner_storage_operation_seconds_count", family="executions") > 0
    # The two transforms ran at a sandbox worker (the condition is evaluated natively; the
    # transform's body is two statements, outside the native subset).
    assert value(found, "flowrunner_sandbox_evaluation_seconds_count") == 2
    # Route templates only: no concrete id ever becomes a label value.
    assert not [s for s in found if flow_id in s.labels.get("route", "")]


async def scrape_until(url: str, check: Callable[[list[Sample]], bool]) -> list[Sample]:
    """Scrapes until ``check`` holds: gauges are sampled every second and webhooks are sent
    in the background. The hang guard bounds it, no deadline."""
    while not check(found := await scrape(url)):  # noqa: ASYNC110 (no event to wait on)
        await asyncio.sleep(0.2)
    return found


async def test_metrics_show_the_queue_sandbox_replacements_and_webhook_outcomes(
    tmp_path: Path,
) -> None:
    with (
        running_server() as receiver,
        Server(
            tmp_path, metrics_token=SCRAPE_TOKEN, executor_concurrency=1, http_allow_private="true"
        ) as server,
    ):
        async with server.client() as http:
            hooks = (("/echo", "execution.completed"), ("/status/500", "execution.failed"))
            for path, event in hooks:
                hook = await http.post(
                    "/api/v1/webhooks", json={"url": receiver.url + path, "events": [event]}
                )
                assert hook.status_code == 201, hook.text

            # One slot: a run held at an HTTP call keeps it, the next one queues behind it.
            holds = await create_flow(
                http,
                "metadata: {name: Holds}\nnodes:\n"
                f"  call: {{type: http.request, params: {{url: '{receiver.url}/hold'}}}}\n",
            )
            first = await start_run(http, holds, {})
            assert await asyncio.to_thread(receiver.holding.wait, HANG_GUARD)
            second = await start_run(http, holds, {})
            found = await scrape_until(server.url, lambda s: value(s, "flowrunner_runs_held") == 2)
            assert value(found, "flowrunner_runs_queued") == 1
            assert value(found, "flowrunner_runs_in_flight") == 1
            for run_id in (second, first):
                canceled = await http.post(f"/api/v1/executions/{run_id}/cancel")
                assert canceled.status_code == 200, canceled.text
            await scrape_until(
                server.url,
                lambda s: (
                    value(s, "flowrunner_runs_held") + value(s, "flowrunner_runs_queued") == 0
                ),
            )

            # A script that never returns is stopped at the timeout and its worker replaced.
            looping = await create_flow(
                http,
                "metadata: {name: Loops}\nnodes:\n"
                "  spin: {type: transform, params: {script: 'while (true) {}'}}\n",
            )
            spun = await finished_run(http, await start_run(http, looping, {}))
            assert spun["status"] == "failed", spun
            await scrape_until(
                server.url, lambda s: value(s, "flowrunner_sandbox_workers_replaced") >= 1
            )

            # Each ended run sends its webhook: delivered to /echo, retried after a 500.
            counted = await create_flow(http, FLOW)
            for n in (1, -1):
                ran = await finished_run(http, await start_run(http, counted, {"n": n}))
                assert ran["status"] == ("completed" if n > 0 else "failed"), ran
            await scrape_until(
                server.url,
                lambda s: (
                    value(s, "flowrunner_webhook_deliveries_total", outcome="delivered") >= 1
                    and value(s, "flowrunner_webhook_deliveries_total", outcome="retrying") >= 1
                ),
            )


async def test_metrics_sum_over_the_processes_of_serve_workers_2(tmp_path: Path) -> None:
    server = Server(tmp_path, serve_args=["--workers", "2"], metrics_token=SCRAPE_TOKEN)
    server.env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    server.start(timeout=60)
    try:
        async with server.client() as http:
            flow_id = await create_flow(http, FLOW)

            async def run(n: int) -> None:
                # A connection of its own each: uvicorn's processes take turns accepting.
                async with httpx.AsyncClient(
                    base_url=server.url, headers=http.headers, timeout=30
                ) as own:
                    answer = await own.post(
                        f"/api/v1/flows/{flow_id}/run?wait=30s", json={"input": {"n": n}}
                    )
                    assert answer.status_code == 200, answer.text

            await asyncio.gather(*(run(n) for n in range(12)))
        # Whichever process answers the scrape, it sums both.
        for _ in range(4):
            found = await scrape(server.url)
            assert value(found, "flowrunner_runs_started_total", flow=flow_id) == 12
            assert value(found, "flowrunner_runs_finished_total", status="completed") == 12
    finally:
        server.stop()


async def test_metrics_can_be_turned_off(tmp_path: Path) -> None:
    with Server(tmp_path, metrics_enabled="false") as server:
        async with server.client() as http:
            assert (await http.get("/metrics")).status_code == 404
