"""The network backend that applies the address policy where the connection is made.

httpx resolves nothing itself: its connection pool asks a network backend to open a TCP
connection to ``(host, port)``. This backend resolves the host once, checks every address it
got against the policy (one refused address refuses the host: a name must not be a lottery
between a public and a private answer), and connects to an address it checked, by IP. There is
no second lookup for a DNS-rebinding answer to change, and TLS still uses the host name for
SNI and certificate checks, because the pool above opens TLS on the origin's name.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import httpcore

from flowrunner.errors import DestinationRefused
from flowrunner.outbound.policy import AddressPolicy, IPAddress, literal_address

# (host, port) -> the addresses it resolves to, as text ("::1", "fe80::1%eth0").
Resolve = Callable[[str, int], Awaitable[list[str]]]


async def system_resolve(host: str, port: int) -> list[str]:
    """The host's addresses from the system resolver (getaddrinfo, off the event loop)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP connections only to addresses the policy allows, by the address checked."""

    def __init__(
        self,
        policy: AddressPolicy,
        resolve: Resolve = system_resolve,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._policy = policy
        self._resolve = resolve
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109  # httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self.vetted(host, port, timeout)
        failure: Exception | None = None
        for address in addresses:  # in the resolver's order, as a browser tries them
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                failure = httpcore.ConnectError(
                    f"cannot connect to {_endpoint(address, port)}: {_why(exc)}"
                )
                failure.__cause__ = exc
            except httpcore.ConnectTimeout as exc:
                failure = exc
        raise failure or httpcore.ConnectError(f"cannot connect to '{host}'")

    async def vetted(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109  # as above
    ) -> list[str]:
        """The addresses to connect to for ``host``; DestinationRefused if any is refused."""
        literal = literal_address(host)
        if literal is not None:
            self._policy.check_address(host, literal)
            return [str(literal)]
        try:
            async with asyncio.timeout(timeout):
                found = await self._resolve(host, port)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving '{host}' timed out") from exc
        except OSError as exc:  # socket.gaierror: no such name, no DNS
            raise httpcore.ConnectError(
                f"cannot resolve host '{host}': {exc.strerror or exc}"
            ) from exc
        if not found:
            raise httpcore.ConnectError(f"cannot resolve host '{host}': no addresses")
        for text in found:
            self._policy.check_address(host, _parse(host, text))
        return found

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109  # httpcore's interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise DestinationRefused("refused to connect to a Unix socket", reason="unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _parse(host: str, text: str) -> IPAddress:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError as exc:  # a resolver hook returning junk: refuse rather than guess
        raise DestinationRefused(
            f"refused to connect to '{host}': it resolved to {text!r}, not an IP address",
            host=host,
            reason="unresolvable",
        ) from exc


def _endpoint(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _why(exc: BaseException) -> str:
    """The most specific reason in a connect error's chain: anyio wraps "Connection refused"
    in "All connection attempts failed"."""
    reason = str(exc)
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno:
            reason = os.strerror(cause.errno)
        cause = cause.__cause__ or cause.__context__
    return reason
