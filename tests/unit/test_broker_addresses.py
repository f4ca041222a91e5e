"""RABBITMQ_ADDRESSES parsed at the boundary, and the order a connection tries a cluster's nodes
in (broker_addresses.py, the Rotation of backends/rabbitmq/transport.py)."""

from __future__ import annotations

from typing import cast

import pytest
from aio_pika.abc import AbstractRobustConnection
from pydantic import ValidationError
from yarl import URL

from ffpool.backends.rabbitmq import connection
from ffpool.backends.rabbitmq.transport import CoalescingConnection, Rotation
from ffpool.broker_addresses import (
    BrokerAddress,
    attempt_order,
    cluster,
    first_start,
    next_start,
    parse_addresses,
    url_address,
)
from ffpool.settings import Settings
from ffpool.topology import QueueType, Topology


def addr(text: str) -> BrokerAddress:
    return BrokerAddress.parse(text)


def test_addresses_are_read_from_the_environment_as_a_comma_separated_list(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RABBITMQ_ADDRESSES", "rabbit-0.rabbit:5672, rabbit-1.rabbit:5673,,")
    got = Settings(_env_file=None).rabbitmq_addresses
    assert got == (
        BrokerAddress(host="rabbit-0.rabbit", port=5672),
        BrokerAddress(host="rabbit-1.rabbit", port=5673),
    )
    monkeypatch.delenv("RABBITMQ_ADDRESSES")
    assert Settings(_env_file=None).rabbitmq_addresses == ()


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("rabbit-2.rabbit.ns.svc", "rabbit-2.rabbit.ns.svc", 5672),
        ("10.0.0.7:5701", "10.0.0.7", 5701),
        ("[::1]:5702", "::1", 5702),
        ("[fd00::7]", "fd00::7", 5672),
    ],
)
def test_an_address_is_a_host_and_a_port(text: str, host: str, port: int) -> None:
    address = addr(text)
    assert (address.host, address.port) == (host, port)
    assert addr(str(address)) == address  # logged as host:port, read back the same


def test_credentials_in_an_address_are_refused_and_never_shown() -> None:
    for text in ("guest:s3cret@rabbit:5672", "amqp://guest:s3cret@rabbit:5672/"):
        with pytest.raises(ValidationError, match="RABBITMQ_URL") as caught:
            Settings(rabbitmq_addresses=f"rabbit-0:5672,{text}")
        assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("rabbit:99999", "1..65535"),
        ("rabbit:0", "1..65535"),
        ("rabbit:amqp", "1..65535"),
        ("rabbit:", "no port"),
        ("bad host:5672", "not a host"),
        ("amqp:rabbit:5672", "not a host"),
        ("::1:5672", "[address]"),
    ],
)
def test_a_bad_address_fails_at_start_naming_it(text: str, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason) as caught:
        Settings(rabbitmq_addresses=f"rabbit-0:5672,{text}")
    assert text in str(caught.value)


def test_the_url_host_comes_first_and_each_node_once() -> None:
    first = url_address("amqp://user:secret@rabbit-0.rabbit:5672/vhost?heartbeat=30")
    assert first == addr("rabbit-0.rabbit:5672")
    assert url_address("amqps://u:p@rabbit/") == addr("rabbit:5671")
    more = parse_addresses("rabbit-1.rabbit:5672,rabbit-0.rabbit:5672,rabbit-2.rabbit:5672")
    assert [str(a) for a in cluster(first, more)] == [
        "rabbit-0.rabbit:5672",
        "rabbit-1.rabbit:5672",
        "rabbit-2.rabbit:5672",
    ]
    assert cluster(None, ()) == []


def test_a_round_tries_every_address_once_from_its_start() -> None:
    assert attempt_order(3, 0) == [0, 1, 2]
    assert attempt_order(3, 2) == [2, 0, 1]
    assert attempt_order(1, 0) == [0]
    assert attempt_order(0, 0) == []


def test_a_round_starts_where_the_last_connection_worked_unless_its_handshake_failed() -> None:
    assert next_start(3, last_good=1, unconfirmed=None) == 1
    assert next_start(3, last_good=1, unconfirmed=2) == 0
    assert next_start(3, last_good=0, unconfirmed=0) == 1
    assert next_start(0, last_good=0, unconfirmed=None) == 0


def test_a_new_connection_starts_at_a_random_address_so_a_pool_spreads_over_the_nodes() -> None:
    assert first_start(3, pick=lambda n: n - 1) == 2
    assert first_start(1, pick=lambda n: 5) == 0  # one address: no choice
    assert first_start(0) == 0
    nodes = [addr("n1:5701"), addr("n2:5702"), addr("n3:5703")]
    firsts = {Rotation(nodes).order()[0] for _ in range(200)}
    assert firsts == set(nodes)  # a node never drawn in 200: odds (2/3)**200
    assert Rotation(nodes, start=1).order() == [nodes[1], nodes[2], nodes[0]]


def test_the_urls_host_is_always_among_the_addresses() -> None:
    url = "amqp://u:p@rabbit-0.rabbit:5672/v"
    more = (addr("rabbit-1.rabbit"), addr("rabbit-2.rabbit"))
    assert cluster(url_address(url), more)[0] == addr("rabbit-0.rabbit:5672")


def test_a_connection_whose_node_died_moves_on_and_backs_off_only_when_it_fails() -> None:
    nodes = [addr("n1:5701"), addr("n2:5702"), addr("n3:5703")]
    rotation = Rotation(nodes, start=0)
    assert rotation.order() == nodes
    rotation.reached(nodes[0])
    assert rotation.confirmed() == nodes[0]
    # n1 dies: the next round still starts at n1 (refused at once), then n2.
    assert rotation.order() == nodes
    rotation.reached(nodes[1])
    assert rotation.confirmed() == nodes[1]
    assert rotation.failed_rounds == 0
    # n2 takes TCP but the handshake (or the channels' restore) fails: n3 next, and it counts.
    assert rotation.order() == [nodes[1], nodes[2], nodes[0]]
    rotation.reached(nodes[1])
    assert rotation.order() == [nodes[2], nodes[0], nodes[1]]
    assert rotation.failed_rounds == 1
    rotation.failed()  # nobody answered
    assert rotation.failed_rounds == 2
    assert rotation.confirmed() is None  # nothing handed out since
    rotation.reached(nodes[2])
    assert rotation.confirmed() == nodes[2]
    assert rotation.failed_rounds == 0


class _Conn:
    def __init__(self, *nodes: str) -> None:
        self.rotation = Rotation([addr(node) for node in nodes])


@pytest.mark.parametrize(
    ("nodes", "queue_type", "cluster"),
    [
        (("rabbit:5672",), "classic", False),  # one node, or one Service name: as before
        (("n1:5701", "n2:5702"), "classic", True),
        (("rabbit:5672",), "quorum", True),  # quorum queues are only worth it on a cluster
    ],
)
def test_per_server_queues_are_exclusive_when_the_process_may_change_node(
    nodes: tuple[str, ...], queue_type: str, cluster: bool
) -> None:
    topo = Topology(queue_type=QueueType(queue_type))
    assert connection.cluster_mode(cast(AbstractRobustConnection, _Conn(*nodes)), topo) is cluster


async def test_a_lost_connection_retries_soon_and_backs_off_to_aio_pikas_default() -> None:
    conn = CoalescingConnection(URL("amqp://guest:guest@n1:5701/?reconnect_interval=30"))
    waits = []
    for rounds in range(6):
        conn.rotation.failed_rounds = rounds
        waits.append(conn.reconnect_interval)
    assert waits == [1.0, 1.0, 2.0, 4.0, 5.0, 5.0]
