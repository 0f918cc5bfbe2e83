"""Which destinations an outbound request may reach: the SSRF rules.

A flow author chooses the URLs a node fetches, so a server that runs flows for many accounts
must not let them reach what only the server can reach: its loopback, the private network it
sits in, the cloud metadata service (169.254.169.254, fd00:ec2::254). By default every address
that is not publicly routable is refused: loopback, private (RFC 1918, fc00::/7), link-local,
multicast, unspecified, carrier-grade NAT (100.64.0.0/10), the other special-purpose ranges,
and the IPv6 forms that embed such an IPv4 address (IPv4-mapped ``::ffff:127.0.0.1``,
IPv4-compatible, 6to4, Teredo, NAT64).

Self-hosted installs that mean to call their own network open it with
``FLOWRUNNER_HTTP_ALLOW_PRIVATE=true`` (everything) or ``FLOWRUNNER_HTTP_ALLOW`` (a comma list
of CIDRs and host names, ``*.corp.example`` for a domain and its subdomains).

This module decides; ``backend`` applies the decision at connection time to the address it
then connects to, so a name cannot resolve to one address when checked and another when used.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from flowrunner.errors import DestinationRefused

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOWED_SCHEMES = frozenset({"http", "https"})
HINT = "set FLOWRUNNER_HTTP_ALLOW_PRIVATE=true or list it in FLOWRUNNER_HTTP_ALLOW to allow it"


def _nets(*cidrs: str) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(c) for c in cidrs)


# Named first, so the error says what the address is; anything else that is not globally
# routable is refused as "not publicly routable" after these.
_REFUSED: tuple[tuple[str, tuple[IPNetwork, ...]], ...] = (
    ("a cloud metadata address", _nets("169.254.169.254/32", "fd00:ec2::254/128")),
    ("the unspecified address", _nets("0.0.0.0/8", "::/128")),
    ("a loopback address", _nets("127.0.0.0/8", "::1/128")),
    ("a private address", _nets("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")),
    ("a carrier-grade NAT address", _nets("100.64.0.0/10")),
    ("a link-local address", _nets("169.254.0.0/16", "fe80::/10")),
    ("a multicast address", _nets("224.0.0.0/4", "ff00::/8")),
    ("a broadcast or reserved address", _nets("240.0.0.0/4")),
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_COMPAT = ipaddress.ip_network("::/96")


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, compatible, 6to4, Teredo,
    NAT64), which is what a connection to it may reach."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64 or (address in _COMPAT and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def refusal(address: IPAddress) -> str | None:
    """Why ``address`` is not a public destination, or None when it is one."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            why = refusal(inner)
            return f"{why} ({inner}) in IPv6 form" if why else None
    for why, networks in _REFUSED:
        if any(address in net for net in networks if net.version == address.version):
            return why
    if not address.is_global:
        return "not a publicly routable address"
    return None


def literal_address(host: str) -> IPAddress | None:
    """``host`` as an IP address when it is one in any form a resolver accepts — dotted,
    decimal (``2130706433``), octal (``0177.0.0.1``), hex (``0x7f.1``), short (``127.1``,
    ``0``), bracketed IPv6 with a zone — else None (a name, resolved at connection time)."""
    text = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    try:
        # inet_aton is what getaddrinfo uses for these forms: what it accepts, a connect reaches.
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except (OSError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """What a server lets its outbound requests reach (hashable: one client per policy)."""

    allow_private: bool = False
    allowed_networks: tuple[IPNetwork, ...] = ()
    allowed_hosts: tuple[str, ...] = ()  # lower case; "*.x.example" covers x.example too

    @classmethod
    def from_settings(cls, allow_private: bool, allow: str | Iterable[str] = "") -> AddressPolicy:
        """From ``FLOWRUNNER_HTTP_ALLOW_PRIVATE`` and ``FLOWRUNNER_HTTP_ALLOW`` (comma list);
        ValueError naming an entry that is neither a CIDR nor a host name."""
        entries = allow.split(",") if isinstance(allow, str) else list(allow)
        networks: list[IPNetwork] = []
        hosts: list[str] = []
        for raw in entries:
            entry = raw.strip().lower()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            name = entry.removeprefix("*.")
            if not name or any(c in name for c in "/:@ ") or "*" in name:
                raise ValueError(f"FLOWRUNNER_HTTP_ALLOW: {raw.strip()!r} is not a CIDR or host")
            hosts.append(entry)
        return cls(allow_private, tuple(networks), tuple(hosts))

    def host_allowed(self, host: str) -> bool:
        """Whether ``host`` (a name) is on the allow-list: then any address it has is fine."""
        host = host.lower().rstrip(".")
        for entry in self.allowed_hosts:
            if entry.startswith("*."):
                if host == entry[2:] or host.endswith(entry[1:]):
                    return True
            elif host == entry:
                return True
        return False

    def check_address(self, host: str, address: IPAddress) -> None:
        """DestinationRefused unless ``address`` (what ``host`` resolved to) may be reached."""
        if self.allow_private or self.host_allowed(host):
            return
        why = refusal(address)
        if why is None or any(
            address in net for net in self.allowed_networks if net.version == address.version
        ):
            return
        shown = str(address)
        resolved = "" if host.strip("[]").lower() == shown else f" resolves to {shown},"
        raise DestinationRefused(
            f"refused to connect to '{host}':{resolved} {why} ({HINT})",
            host=host,
            address=shown,
            reason=why,
        )

    def check_url(self, url: str) -> str:
        """The URL's host, after checking what can be checked before connecting: the scheme,
        that there is a host, and a literal IP address. Names are checked at connection time.
        """
        try:
            parts = urlsplit(url)
            host = parts.hostname or ""
            parts.port  # noqa: B018  # raises ValueError on a bad port: check it here
        except ValueError as exc:
            raise DestinationRefused(f"invalid URL {url!r}: {exc}", reason="invalid URL") from exc
        scheme = parts.scheme.lower()
        if scheme not in ALLOWED_SCHEMES:
            raise DestinationRefused(
                f"refused URL {url!r}: scheme '{scheme or '(none)'}' is not http or https",
                host=host or None,
                reason="scheme",
            )
        if not host:
            raise DestinationRefused(f"invalid URL {url!r}: no host", reason="invalid URL")
        address = literal_address(host)
        if address is not None:
            self.check_address(host, address)
        return host
