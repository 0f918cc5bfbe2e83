"""The SSRF corpus: URLs the default policy refuses before connecting, with the host and the
reason in the error, and what the allow settings open."""

from __future__ import annotations

import ipaddress
import re

import pytest

from flowrunner.errors import DestinationRefused
from flowrunner.outbound import AddressPolicy, literal_address, refusal

DEFAULT = AddressPolicy()

# (URL, host as named in the error, reason in the error)
REFUSED = [
    ("http://127.0.0.1/", "127.0.0.1", "loopback"),
    ("http://127.0.0.1:8080/admin", "127.0.0.1", "loopback"),
    ("https://127.0.0.1/", "127.0.0.1", "loopback"),
    ("http://user:pw@127.0.0.1/", "127.0.0.1", "loopback"),
    ("http://127.1/", "127.1", "loopback"),
    ("http://127.0.1/", "127.0.1", "loopback"),
    ("http://127.255.255.254/", "127.255.255.254", "loopback"),
    ("http://2130706433/", "2130706433", "loopback"),  # decimal
    ("http://0x7f000001/", "0x7f000001", "loopback"),  # hex
    ("http://0x7f.0x0.0x0.0x1/", "0x7f.0x0.0x0.0x1", "loopback"),
    ("http://0x7f.1/", "0x7f.1", "loopback"),
    ("http://0177.0.0.1/", "0177.0.0.1", "loopback"),  # octal
    ("http://017700000001/", "017700000001", "loopback"),
    ("http://127.000.000.001/", "127.000.000.001", "loopback"),
    ("http://0/", "0", "unspecified"),
    ("http://0.0.0.0:80/", "0.0.0.0", "unspecified"),
    ("http://[::]/", "::", "unspecified"),
    ("http://[::1]/", "::1", "loopback"),
    ("http://[0:0:0:0:0:0:0:1]:8080/", "0:0:0:0:0:0:0:1", "loopback"),
    ("http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1", "loopback"),
    ("http://[::ffff:7f00:1]/", "::ffff:7f00:1", "loopback"),
    ("http://[0:0:0:0:0:ffff:127.0.0.1]/", "0:0:0:0:0:ffff:127.0.0.1", "loopback"),
    ("http://[::127.0.0.1]/", "::127.0.0.1", "loopback"),  # IPv4-compatible
    ("http://[64:ff9b::7f00:1]/", "64:ff9b::7f00:1", "loopback"),  # NAT64
    ("http://[2002:7f00:1::]/", "2002:7f00:1::", "loopback"),  # 6to4
    ("http://10.0.0.1/", "10.0.0.1", "private"),
    ("http://10.255.255.255/", "10.255.255.255", "private"),
    ("http://172.16.0.1/", "172.16.0.1", "private"),
    ("http://172.31.255.254/", "172.31.255.254", "private"),
    ("http://192.168.1.1/", "192.168.1.1", "private"),
    ("http://0xc0a80101/", "0xc0a80101", "private"),  # 192.168.1.1 in hex
    ("http://[::ffff:10.0.0.1]/", "::ffff:10.0.0.1", "private"),
    ("http://[fc00::1]/", "fc00::1", "private"),
    ("http://[fd12:3456::1]/", "fd12:3456::1", "private"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254", "metadata"),
    ("http://[fd00:ec2::254]/latest/meta-data/", "fd00:ec2::254", "metadata"),
    ("http://[::ffff:169.254.169.254]/", "::ffff:169.254.169.254", "metadata"),
    ("http://2852039166/", "2852039166", "metadata"),  # 169.254.169.254 in decimal
    ("http://169.254.0.1/", "169.254.0.1", "link-local"),
    ("http://[fe80::1]/", "fe80::1", "link-local"),
    ("http://[fe80::1%25eth0]/", "fe80::1%25eth0", "link-local"),
    ("http://100.64.0.1/", "100.64.0.1", "carrier-grade NAT"),
    ("http://100.127.255.254/", "100.127.255.254", "carrier-grade NAT"),
    ("http://224.0.0.1/", "224.0.0.1", "multicast"),
    ("http://239.255.255.250:1900/", "239.255.255.250", "multicast"),
    ("http://[ff02::1]/", "ff02::1", "multicast"),
    ("http://255.255.255.255/", "255.255.255.255", "broadcast"),
    ("http://240.0.0.1/", "240.0.0.1", "reserved"),
    ("http://192.0.2.1/", "192.0.2.1", "not a publicly routable"),  # TEST-NET-1
    ("http://198.18.0.1/", "198.18.0.1", "not a publicly routable"),  # benchmarking
]

SCHEMES = [
    "file:///etc/passwd",
    "ftp://ftp.example.test/",
    "gopher://127.0.0.1:6379/_INFO",
    "dict://127.0.0.1:11211/stats",
    "ldap://ldap.example.test/",
    "javascript:alert(1)",
    "data:text/plain,hello",
    "//example.test/no-scheme",
]

PUBLIC = [
    "http://93.184.216.34/",
    "https://8.8.8.8/dns",
    "http://[2606:4700:4700::1111]/",
    "http://[::ffff:93.184.216.34]/",
    "https://api.example.test/orders",  # a name: checked when connecting, not here
    "http://1.1.1.1:8443/",
]


def test_the_corpus_has_at_least_forty_refused_urls() -> None:
    assert len(REFUSED) + len(SCHEMES) >= 40


@pytest.mark.parametrize(("url", "host", "reason"), REFUSED, ids=[u for u, _, _ in REFUSED])
def test_default_policy_refuses_non_public_addresses_naming_host_and_reason(
    url: str, host: str, reason: str
) -> None:
    with pytest.raises(DestinationRefused) as info:
        DEFAULT.check_url(url)
    message = str(info.value)
    assert f"refused to connect to '{host}'" in message
    assert reason in message
    assert "FLOWRUNNER_HTTP_ALLOW_PRIVATE" in message
    assert info.value.code == "destination_refused"


@pytest.mark.parametrize("url", SCHEMES)
def test_only_http_and_https_are_allowed(url: str) -> None:
    with pytest.raises(DestinationRefused, match="is not http or https"):
        AddressPolicy(allow_private=True).check_url(url)


@pytest.mark.parametrize("url", PUBLIC)
def test_public_destinations_pass(url: str) -> None:
    DEFAULT.check_url(url)


def test_a_url_without_a_host_or_with_a_bad_port_is_refused_clearly() -> None:
    with pytest.raises(DestinationRefused, match="no host"):
        DEFAULT.check_url("http:///path")
    with pytest.raises(DestinationRefused, match="invalid URL"):
        DEFAULT.check_url("http://example.test:99999/")


@pytest.mark.parametrize(("url", "_host", "_reason"), REFUSED)
def test_allow_private_opens_every_address(url: str, _host: str, _reason: str) -> None:
    AddressPolicy(allow_private=True).check_url(url)


def test_allow_list_opens_only_the_listed_networks_and_hosts() -> None:
    policy = AddressPolicy.from_settings(
        False, " 127.0.0.0/8, 10.1.0.0/16,intranet.test,*.corp.test"
    )
    policy.check_url("http://127.0.0.1/")
    policy.check_url("http://2130706433/")
    policy.check_url("http://10.1.2.3/")
    with pytest.raises(DestinationRefused, match="private"):
        policy.check_url("http://10.2.0.1/")
    with pytest.raises(DestinationRefused, match="metadata"):
        policy.check_url("http://169.254.169.254/")
    # Host names open whatever they resolve to; other names are not opened by them.
    loopback = ipaddress.ip_address("127.0.0.1")
    private = ipaddress.ip_address("192.168.0.9")
    policy.check_address("intranet.test", private)
    policy.check_address("INTRANET.test.", private)
    policy.check_address("corp.test", private)
    policy.check_address("a.b.corp.test", private)
    with pytest.raises(
        DestinationRefused, match=re.escape("'evilcorp.test': resolves to 192.168.0.9")
    ):
        policy.check_address("evilcorp.test", private)
    policy.check_address("anything.test", loopback)  # 127.0.0.0/8 is listed


@pytest.mark.parametrize("entry", ["http://x.test", "a b", "*", "10.0.0.0/33x", "x.test:80"])
def test_an_allow_list_entry_that_is_neither_cidr_nor_host_is_an_error(entry: str) -> None:
    with pytest.raises(ValueError, match="FLOWRUNNER_HTTP_ALLOW"):
        AddressPolicy.from_settings(False, entry)


def test_literal_addresses_in_every_form_a_resolver_accepts() -> None:
    assert literal_address("2130706433") == ipaddress.ip_address("127.0.0.1")
    assert literal_address("[::1]") == ipaddress.ip_address("::1")
    assert literal_address("fe80::1%eth0") == ipaddress.ip_address("fe80::1")
    assert literal_address("example.test") is None
    assert literal_address("1.2.3.4.5") is None


def test_refusal_of_public_addresses_is_none() -> None:
    assert refusal(ipaddress.ip_address("93.184.216.34")) is None
    assert refusal(ipaddress.ip_address("2606:4700:4700::1111")) is None
