"""The guarded client against a real server on 127.0.0.1: names are checked by every address
they resolve to, connections go to the address checked (no second lookup), redirects are
checked hop by hop, and the shared client keeps no cookies and follows no proxy settings."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import httpx
import pytest

from flowrunner.errors import DestinationRefused
from flowrunner.outbound import AddressPolicy, GuardedBackend, guarded_client, shared_client
from tests.http_server import TestServer, running_server


@pytest.fixture(scope="module")
def server() -> Iterator[TestServer]:
    with running_server() as running:
        yield running


class Resolver:
    """A resolver hook: fixed answers per name, every call counted (no /etc/hosts needed)."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        queue = self.answers[host]
        return queue.pop(0) if len(queue) > 1 else queue[0]


async def test_a_name_resolving_to_loopback_is_refused_and_nothing_is_sent(
    server: TestServer,
) -> None:
    resolver = Resolver({"evil.test": [["127.0.0.1"]]})
    before = len(server.seen)
    async with guarded_client(AddressPolicy(), resolve=resolver) as client:
        with pytest.raises(DestinationRefused) as info:
            await client.get(f"http://evil.test:{server.port}/echo")
    assert str(info.value).startswith(
        "refused to connect to 'evil.test': resolves to 127.0.0.1, a loopback address"
    )
    assert len(server.seen) == before


async def test_localhost_through_the_system_resolver_is_refused(server: TestServer) -> None:
    async with guarded_client(AddressPolicy()) as client:
        with pytest.raises(
            DestinationRefused, match=re.escape("'localhost': resolves to 127.0.0.1")
        ):
            await client.get(f"http://localhost:{server.port}/echo")


async def test_one_private_address_among_public_ones_refuses_the_name(server: TestServer) -> None:
    resolver = Resolver({"mixed.test": [["93.184.216.34", "10.0.0.7"]]})
    async with guarded_client(AddressPolicy(), resolve=resolver) as client:
        with pytest.raises(
            DestinationRefused, match=re.escape("'mixed.test': resolves to 10.0.0.7, a priv")
        ):
            await client.get("http://mixed.test/")


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback address \\(127.0.0.1\\) in IPv6 form"),
        ("169.254.169.254", "cloud metadata"),
        ("0.0.0.0", "unspecified"),
        ("fe80::1%eth0", "link-local"),
    ],
)
async def test_names_resolving_to_any_refused_form_are_refused(answer: str, why: str) -> None:
    resolver = Resolver({"n.test": [[answer]]})
    async with guarded_client(AddressPolicy(), resolve=resolver) as client:
        with pytest.raises(DestinationRefused, match=f"'n.test': resolves to .*{why}"):
            await client.get("http://n.test/")


async def test_the_connection_goes_to_the_address_checked_with_no_second_lookup(
    server: TestServer,
) -> None:
    # A rebinding resolver: the first answer passes, any later one would reach a refused
    # address. One lookup per connection, and the request reaches the server by that IP
    # while it still names the host (Host header; TLS would use it for SNI likewise).
    resolver = Resolver({"rebind.test": [["127.0.0.1"], ["10.0.0.1"]]})
    policy = AddressPolicy.from_settings(False, "127.0.0.1/32")
    async with guarded_client(policy, resolve=resolver) as client:
        for _ in range(3):
            response = await client.get(f"http://rebind.test:{server.port}/echo")
            assert response.json()["headers"]["host"] == f"rebind.test:{server.port}"
    assert resolver.calls == ["rebind.test"]  # the pooled connection was reused


async def test_a_redirect_to_a_refused_name_is_refused_when_it_connects(
    server: TestServer,
) -> None:
    resolver = Resolver({"api.test": [["127.0.0.1"]], "evil.test": [["127.0.0.1"]]})
    policy = AddressPolicy.from_settings(False, "api.test")
    target = f"http://evil.test:{server.port}/echo"
    async with guarded_client(policy, resolve=resolver) as client:
        before = len(server.seen)
        with pytest.raises(
            DestinationRefused, match=re.escape("'evil.test': resolves to 127.0.0.1")
        ):
            await client.get(
                f"http://api.test:{server.port}/redirect",
                params={"to": target},
                follow_redirects=True,
            )
    assert [r["path"] for r in server.seen[before:]] == ["/redirect"]


async def test_the_client_keeps_no_cookies_and_ignores_proxy_settings(
    server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A proxy would make the connection for us, past the guard: the environment is ignored.
    monkeypatch.setenv("HTTP_PROXY", "http://10.255.0.1:9")
    monkeypatch.setenv("ALL_PROXY", "http://10.255.0.1:9")
    async with guarded_client(AddressPolicy(allow_private=True)) as client:
        assert (await client.get(f"{server.url}/set-cookie")).text == "set"
        echoed = (await client.get(f"{server.url}/echo")).json()
    assert "cookie" not in echoed["headers"]


async def test_a_unix_socket_is_refused() -> None:
    with pytest.raises(DestinationRefused, match="Unix socket"):
        await GuardedBackend(AddressPolicy(allow_private=True)).connect_unix_socket("/x")


def test_one_shared_client_per_loop_closed_when_the_loop_ends() -> None:
    policy = AddressPolicy()

    async def two() -> tuple[httpx.AsyncClient, httpx.AsyncClient]:
        return await shared_client(policy), await shared_client(policy)

    first, again = asyncio.run(two())
    assert first is again
    assert first.is_closed  # closed by the loop's shutdown, not left to the garbage collector
    second, _ = asyncio.run(two())
    assert second is not first
    assert second.is_closed
