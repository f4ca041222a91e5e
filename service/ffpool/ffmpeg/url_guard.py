"""SSRF guard for URL inputs: which URLs and addresses a worker may fetch from.

The address check runs on the addresses a name RESOLVES to, inside the HTTP client's resolver,
at every connection (the first request and each redirect hop). Checking the name up front and
connecting later would let DNS rebinding slip a private address in between. aiohttp does not
call the resolver for IP literals, so `url_problem` checks those before a request is made.

Cloud metadata and credential endpoints are refused even with `url_allow_private`: a trusted
network is no reason to hand out the node's or a pod's credentials. Azure's WireServer is a
public address, refused unless private addresses are allowed.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import Final

from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
AddressPolicy = Callable[[IPAddress], str | None]

ALLOWED_SCHEMES: Final = frozenset({"http", "https"})
METADATA_ADDRESSES: Final = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack instance metadata
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "169.254.170.2",  # AWS ECS task metadata and credentials
        "169.254.170.23",  # AWS EKS Pod Identity agent
        "fd00:ec2::23",  # AWS EKS Pod Identity agent over IPv6
        "100.100.100.200",  # Alibaba Cloud metadata
        "fd20:ce::254",  # GCP metadata over IPv6
    )
)
# Public addresses that act as a cloud's control endpoint from inside its VMs.
PLATFORM_ADDRESSES: Final = frozenset(
    {ipaddress.ip_address("168.63.129.16")}  # Azure WireServer (agent, health, DNS)
)
# RFC 6598 shared address space (carrier-grade NAT); also where Alibaba's metadata lives.
CGNAT: Final = ipaddress.ip_network("100.64.0.0/10")
# RFC 6052 NAT64 well-known prefix: the last 32 bits are an IPv4 address.
NAT64: Final = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, NAT64, 6to4, Teredo), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    return None


def check_address(ip: IPAddress, *, allow_private: bool = False) -> str | None:
    """Why a worker may not connect to `ip`, or None when it may."""
    if ip in METADATA_ADDRESSES:
        return "cloud metadata address"
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            reason = check_address(embedded, allow_private=allow_private)
            return f"embeds an IPv4 {reason}" if reason else None
    if allow_private:
        return None
    if ip in PLATFORM_ADDRESSES:
        return "cloud platform address"
    checks = (
        (ip.is_unspecified, "unspecified"),
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local"),
        (ip.is_multicast, "multicast"),
        (ip in CGNAT, "carrier-grade NAT"),
        (ip.is_reserved, "reserved"),
        (ip.is_private, "private"),
        (not ip.is_global, "non-global"),
    )
    return next((f"{name} address" for hit, name in checks if hit), None)


def policy(allow_private: bool) -> AddressPolicy:
    return lambda ip: check_address(ip, allow_private=allow_private)


def url_problem(url: URL, address_policy: AddressPolicy) -> str | None:
    """Why a URL (the input, or a redirect target) is refused before connecting, or None."""
    if url.scheme not in ALLOWED_SCHEMES:
        return "only http and https URLs are accepted"
    if url.user is not None or url.password is not None:
        # Credentials would travel into job records and logs; signed URLs work instead.
        return "URLs with credentials are not accepted"
    host = url.raw_host
    if not host:
        return "URL has no host"
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    return address_policy(literal)


def masked(url: URL) -> str:
    """`url` for the log: no userinfo, no query or fragment (where signed URLs keep their
    tokens), scheme, host, port and path kept."""
    bare = url.with_user(None).with_query(None).with_fragment(None)
    return str(bare) + ("?***" if url.raw_query_string else "")


class AddressRefused(OSError):
    """A name resolved to an address the policy refuses (an OSError so aiohttp wraps it into
    ClientConnectorError, whose `os_error` carries it back to us)."""


class GuardedResolver(AbstractResolver):
    """Wraps a real resolver; refuses the whole name if any address it resolves to is refused,
    so a name that mixes public and private addresses cannot be used to reach the private one."""

    def __init__(self, inner: AbstractResolver, address_policy: AddressPolicy) -> None:
        self._inner = inner
        self._policy = address_policy

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            reason = self._policy(ipaddress.ip_address(result["host"].partition("%")[0]))
            if reason:
                raise AddressRefused(f"{host} resolves to a {reason}")
        return results

    async def close(self) -> None:
        await self._inner.close()
