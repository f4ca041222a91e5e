"""The SSRF guard: address table, URL checks and the connect-time resolver wrapper."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from ffpool.ffmpeg.url_guard import (
    AddressRefused,
    GuardedResolver,
    check_address,
    policy,
    url_problem,
)

REFUSED = [
    ("127.0.0.1", "loopback"),
    ("127.255.0.9", "loopback"),
    ("::1", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("192.168.1.1", "private"),
    ("fd12:3456::1", "private"),
    ("169.254.1.1", "link-local"),
    ("fe80::1", "link-local"),
    ("224.0.0.1", "multicast"),
    ("ff02::1", "multicast"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.254", "carrier-grade NAT"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", ""),
    ("198.18.0.1", ""),
    ("192.0.2.1", ""),
    ("169.254.169.254", "metadata"),
    ("fd00:ec2::254", "metadata"),
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:10.0.0.1", "private"),
    ("::ffff:169.254.169.254", "metadata"),
    ("64:ff9b::7f00:1", "loopback"),
    ("2002:7f00:1::", "loopback"),
    ("2002:a9fe:a9fe::", "metadata"),
]
ALLOWED = ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize(("address", "why"), REFUSED)
def test_refused_addresses(address: str, why: str) -> None:
    reason = check_address(ipaddress.ip_address(address))
    assert reason is not None
    assert why in reason


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_allowed(address: str) -> None:
    assert check_address(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.1", "::ffff:192.168.0.1", "fe80::1"])
def test_allow_private_opens_private_ranges(address: str) -> None:
    assert check_address(ipaddress.ip_address(address), allow_private=True) is None


@pytest.mark.parametrize("address", ["169.254.169.254", "fd00:ec2::254", "::ffff:169.254.169.254"])
def test_metadata_refused_even_when_private_allowed(address: str) -> None:
    assert check_address(ipaddress.ip_address(address), allow_private=True) is not None


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://example.com/clip.mp4", None),
        ("http://example.com:8080/a?b=c", None),
        ("http://93.184.216.34/clip.mp4", None),
        ("ftp://example.com/clip.mp4", "http and https"),
        ("file:///etc/passwd", "http and https"),
        ("gopher://example.com/", "http and https"),
        ("http://user:pw@example.com/clip.mp4", "credentials"),
        ("http://user@example.com/clip.mp4", "credentials"),
        ("http://127.0.0.1:8080/clip.mp4", "loopback"),
        ("http://[::1]/clip.mp4", "loopback"),
        ("http://[::ffff:7f00:1]/clip.mp4", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://[fd00:ec2::254]/", "metadata"),
    ],
)
def test_url_problem(url: str, why: str | None) -> None:
    problem = url_problem(URL(url), policy(allow_private=False))
    if why is None:
        assert problem is None
    else:
        assert problem is not None
        assert why in problem


class StaticResolver(AbstractResolver):
    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses
        self.closed = False

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=a, port=port, family=family, proto=0, flags=0)
            for a in self.addresses
        ]

    async def close(self) -> None:
        self.closed = True


async def test_resolver_passes_public_addresses() -> None:
    inner = StaticResolver("93.184.216.34", "2606:4700:4700::1111")
    results = await GuardedResolver(inner, policy(False)).resolve("example.com", 443)
    assert [r["host"] for r in results] == ["93.184.216.34", "2606:4700:4700::1111"]


@pytest.mark.parametrize(
    "addresses",
    [("127.0.0.1",), ("93.184.216.34", "10.0.0.1"), ("169.254.169.254",), ("fe80::1%eth0",)],
)
async def test_resolver_refuses_any_forbidden_address(addresses: tuple[str, ...]) -> None:
    guard = GuardedResolver(StaticResolver(*addresses), policy(False))
    with pytest.raises(AddressRefused, match=r"rebind\.example resolves to a"):
        await guard.resolve("rebind.example", 80)


async def test_resolver_close_closes_inner() -> None:
    inner = StaticResolver()
    await GuardedResolver(inner, policy(False)).close()
    assert inner.closed
