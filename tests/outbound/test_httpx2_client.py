"""The httpx2 twin of the guarded client (the mcp SDK's HTTP runs on httpx2): the same policy
refuses the same destinations, by the address each name resolves to, and allows what the
settings open; connect failures arrive as httpx2's own errors."""

from __future__ import annotations

import socket

import httpx2
import pytest

from flowrunner.errors import DestinationRefused
from flowrunner.outbound import AddressPolicy
from flowrunner.outbound.httpx2_client import ResponseTooLarge, guarded_httpx2_client
from tests.http_server import running_server


async def to_loopback(host: str, port: int) -> list[str]:
    return ["127.0.0.1"]


async def test_loopback_is_refused_by_default_by_literal_and_by_name() -> None:
    async with guarded_httpx2_client(AddressPolicy()) as client:
        with pytest.raises(DestinationRefused, match="a loopback address"):
            await client.get("http://127.0.0.1:9/")
    async with guarded_httpx2_client(AddressPolicy(), resolve=to_loopback) as client:
        with pytest.raises(DestinationRefused, match=r"resolves to 127\.0\.0\.1"):
            await client.get("http://innocent.example.test/")


async def test_an_allowed_private_destination_is_reached() -> None:
    with running_server() as server:
        async with guarded_httpx2_client(AddressPolicy(allow_private=True)) as client:
            response = await client.get(f"{server.url}/echo")
    assert response.status_code == 200


async def test_a_refused_connection_is_httpx2s_connect_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        async with guarded_httpx2_client(AddressPolicy(allow_private=True)) as client:
            with pytest.raises(httpx2.ConnectError):
                await client.get(f"http://127.0.0.1:{port}/")


async def test_a_response_past_the_limit_fails_while_read_except_a_get_stream() -> None:
    policy = AddressPolicy(allow_private=True)
    with running_server() as server:
        async with guarded_httpx2_client(policy, max_response_bytes=2000) as client:
            with pytest.raises(ResponseTooLarge, match="over the limit of 2000 bytes"):
                await client.post(f"{server.url}/echo", content=b"x" * 5000)
            small = await client.post(f"{server.url}/echo", content=b"x")
            assert small.status_code == 200
            # A GET is a stream of server events, bounded per event by the caller.
            long = await client.get(f"{server.url}/echo", headers={"X-Pad": "y" * 5000})
            assert long.status_code == 200
