"""Through a real server: a big flow is validated off the event loop (other requests keep
being answered meanwhile), and each per-flow limit is a clear 4xx."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.e2e.server import Server

pytestmark = pytest.mark.slow

YAML = {"content-type": "application/yaml"}
# Healthz round trips, each issued after the previous one answered, that must complete while
# the big flow is still being validated. A server validating on its event loop answers none
# of them until the validation ends (a few slip in while it still reads the body: 3 seen);
# one validating elsewhere keeps answering throughout (well over a hundred seen).
PINGS = 25
MAX_PINGS = 100_000  # a bound on the loop only


def chain(count: int, *, extra: str = "") -> str:
    """A valid flow of ``count`` set nodes in a row."""
    lines = ["metadata: {name: Chain}", "nodes:"]
    for i in range(count):
        nxt = f", next: {{default: n{i + 1}}}" if i < count - 1 else ""
        lines.append(f'  n{i}: {{type: set, params: {{values: {{v{i}: "${{input.x}}"}}}}{nxt}}}')
    return "\n".join(lines) + "\n" + extra


@pytest.fixture(scope="module")
def roomy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server that accepts a 1 MB flow of ~12,000 nodes, so the whole validation runs."""
    with Server(tmp_path_factory.mktemp("roomy"), max_flow_nodes=20_000) as server:
        yield server


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with Server(
        tmp_path_factory.mktemp("strict"),
        max_flow_bytes=20_000,
        max_flow_nodes=50,
        max_script_bytes=1000,
    ) as server:
        yield server


@pytest.mark.parametrize("uploads", [1, 4])
async def test_healthz_is_answered_while_big_flows_are_being_validated(
    roomy: Server, uploads: int
) -> None:
    big = chain(11_500).encode()
    assert len(big) < 1_048_576  # under the byte limit: the whole parse and check run
    sent = [asyncio.Event() for _ in range(uploads)]

    async def body(done: asyncio.Event) -> AsyncIterator[bytes]:
        for start in range(0, len(big), 64 * 1024):
            yield big[start : start + 64 * 1024]
        done.set()  # httpx asks for the next chunk only once the last one is written

    async with roomy.client(timeout=120) as uploader, roomy.client(timeout=120) as pings:
        tasks = [
            asyncio.create_task(
                uploader.post(
                    "/api/v1/flows/validate",
                    content=body(done),
                    headers={**YAML, "content-length": str(len(big))},
                )
            )
            for done in sent
        ]
        for done in sent:
            await done.wait()
        answered_first = 0
        for _ in range(MAX_PINGS):
            health = await pings.get("/healthz")
            assert health.status_code == 200
            if any(task.done() for task in tasks):
                break
            answered_first += 1
        responses = await asyncio.gather(*tasks)
    assert [r.status_code for r in responses] == [200] * uploads
    assert all(r.json()["valid"] for r in responses)
    # Before the first validation ended, the server kept answering other requests.
    assert answered_first >= PINGS


async def test_a_flow_over_the_byte_limit_is_a_413(strict: Server) -> None:
    async with strict.client(timeout=120) as client:
        response = await client.post("/api/v1/flows", content=chain(400).encode(), headers=YAML)
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "payload_too_large"
    assert "20000 bytes" in error["message"]


async def test_a_flow_with_too_many_nodes_is_a_400_naming_the_nodes_path(strict: Server) -> None:
    async with strict.client(timeout=120) as client:
        response = await client.post("/api/v1/flows", content=chain(51), headers=YAML)
        report = await client.post("/api/v1/flows/validate", content=chain(51), headers=YAML)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_flow"
    assert "51 nodes, over the limit of 50" in error["message"]
    assert [(p["path"], p["line"]) for p in error["details"]] == [("nodes", 2)]
    assert report.status_code == 200
    assert report.json()["valid"] is False
    assert report.json()["problems"][0]["path"] == "nodes"


async def test_a_script_over_the_size_limit_is_a_400_naming_its_path(strict: Server) -> None:
    script = "        return input;" + "\n        // padding" * 100
    flow = (
        "metadata: {name: Script}\n"
        "nodes:\n"
        "  t:\n"
        "    type: transform\n"
        "    params:\n"
        "      script: |\n"
        f"{script}\n"
        "    hooks: {post: 'return null'}\n"
    )
    async with strict.client(timeout=120) as client:
        response = await client.post("/api/v1/flows", content=flow, headers=YAML)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    problems = [p for p in error["details"] if p["severity"] == "error"]
    assert [p["path"] for p in problems] == ["nodes.t.params.script"]
    assert "over the limit of 1000 bytes" in problems[0]["message"]
    assert problems[0]["line"] == 6  # the script: | line


async def test_a_flow_within_every_limit_is_saved(strict: Server, tmp_path: Path) -> None:
    async with strict.client(timeout=120) as client:
        response = await client.post("/api/v1/flows", content=chain(50), headers=YAML)
    assert response.status_code == 201, response.text
