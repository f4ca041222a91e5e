"""A RabbitMQ cluster's node addresses as pure values: parsed from RABBITMQ_ADDRESSES at load,
and the order a connection tries them in (docs/rabbitmq.md, "Broker clusters").

RABBITMQ_URL keeps the credentials, virtual host, TLS and parameters; its host is the first
address, and RABBITMQ_ADDRESSES adds the cluster's other nodes. A connection's first attempt
starts at a random address (the processes of a pool spread over the nodes); every reconnect
tries the addresses in order, starting from the one that last worked, so a process whose node
died lands on a surviving one.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Annotated, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

AMQP_PORT = 5672
AMQPS_PORT = 5671
# A DNS name (one or more labels), an IPv4 address, or an IPv6 address in brackets.
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_BARE_V6 = re.compile(r"^[0-9A-Fa-f:.]+$")
_HOST = re.compile(rf"^(\[[0-9A-Fa-f:.]+\]|{_LABEL}(\.{_LABEL})*)$")


class BrokerAddress(BaseModel):
    """One node: host and port, nothing else (never credentials: it is logged)."""

    model_config = ConfigDict(frozen=True)

    host: Annotated[str, Field(min_length=1, max_length=253)]
    port: Annotated[int, Field(ge=1, le=65535)]

    @classmethod
    def parse(cls, text: str, default_port: int = AMQP_PORT) -> Self:
        """`host:port`, `host` (the default port) or `[v6]:port`; ValueError names the bad one
        (not one with credentials in it, which belong in RABBITMQ_URL and are never shown)."""
        if "@" in text or "/" in text:
            raise ValueError(
                "a broker address is host:port only: credentials, vhost and scheme "
                "belong in RABBITMQ_URL"
            )
        host, sep, port = text.strip().rpartition(":")
        if not sep or (host.startswith("[") != host.endswith("]")) or not host:
            host, port = text.strip(), ""
        elif not port:
            raise ValueError(f"broker address {text!r}: no port after the colon")
        if not _HOST.match(host):
            bare_v6 = _BARE_V6.match(host) and ":" in host
            hint = "write an IPv6 host as [address]:port" if bare_v6 else "not a host or IP"
            raise ValueError(f"broker address {text!r}: {hint}")
        if port and not (port.isdigit() and 1 <= int(port) <= 65535):
            raise ValueError(f"broker address {text!r}: the port must be 1..65535")
        return cls(host=host.strip("[]"), port=int(port) if port else default_port)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_addresses(text: str) -> tuple[BrokerAddress, ...]:
    """Comma-separated `host:port` list; empty entries are ignored."""
    return tuple(BrokerAddress.parse(part) for part in text.split(",") if part.strip())


def url_address(url: str) -> BrokerAddress | None:
    """The address RABBITMQ_URL names (its scheme's default port when it has none)."""
    parts = urlsplit(url)
    if not parts.hostname:
        return None
    default = AMQPS_PORT if parts.scheme == "amqps" else AMQP_PORT
    return BrokerAddress(host=parts.hostname, port=parts.port or default)


def cluster(first: BrokerAddress | None, more: tuple[BrokerAddress, ...]) -> list[BrokerAddress]:
    """Every address once, the URL's first: the order a fresh connection tries them in."""
    found: list[BrokerAddress] = []
    for address in (first, *more):
        if address is not None and address not in found:
            found.append(address)
    return found


def attempt_order(count: int, start: int) -> list[int]:
    """Indices of `count` addresses from `start` on, wrapping: one round of attempts."""
    if count <= 0:
        return []
    return [(start + step) % count for step in range(count)]


def first_start(count: int, pick: Callable[[int], int] = random.randrange) -> int:
    """Where a new connection's first round starts: a random address, so the processes of a
    pool spread over the nodes (`pick(count)` is in 0..count-1)."""
    return pick(count) if count > 1 else 0


def next_start(count: int, last_good: int, unconfirmed: int | None) -> int:
    """Where the next round starts: at the address that last worked, unless the last one
    handed out never completed its handshake (a node that accepts TCP but not AMQP, e.g.
    one shutting down): then at the address after it, so a round never sticks on it."""
    if count <= 0:
        return 0
    if unconfirmed is None:
        return last_good % count
    return (unconfirmed + 1) % count
