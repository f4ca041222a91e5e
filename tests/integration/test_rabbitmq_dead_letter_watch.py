"""QUEUE_TYPE=quorum on the normal broker: a job the broker dead-letters (its TTL ran out)
while its server's connection is down still reaches the waiting client as `expired`, and its
failed marker is written: the server's dead-letter watch is a durable quorum queue that keeps
the dead letter until the server is back (feed.py, docs/rabbitmq.md "Broker clusters")."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import cast

import pytest

from ffpool import names
from ffpool.backends.rabbitmq import build_server
from ffpool.backends.rabbitmq.markers import Markers
from ffpool.backends.rabbitmq.transport import CoalescingConnection
from ffpool.broker_addresses import BrokerAddress
from ffpool.domain.events import FailedEvent, FailureCode
from ffpool.topology import Topology
from tests.fakes import FakeMetrics
from tests.integration.rabbit_harness import (
    QUORUM,
    close_connections,
    job,
    make_settings,
    message_count,
    need_broker,
    prefix_for_test,
    started,
)
from tests.polling import eventually

pytestmark = [pytest.mark.rabbitmq, pytest.mark.timeout(120)]

# Nothing listens here: the server's reconnects fail until the test gives its address back.
NOWHERE = BrokerAddress(host="127.0.0.1", port=1)


@pytest.fixture(autouse=True)
def _broker() -> None:
    need_broker()


async def test_a_job_that_expires_while_its_server_reconnects_is_reported_expired(
    tmp_path: Path,
) -> None:
    instance = f"watch-{uuid.uuid4().hex[:8]}"
    async with prefix_for_test("q", **QUORUM) as prefix:
        settings = make_settings(prefix, tmp_path, instance, **QUORUM, queue_message_ttl_ms=1000)
        topo = Topology.from_settings(settings)
        server = build_server(settings, FakeMetrics())
        async with started(server):
            consumer = cast(CoalescingConnection, server._links._conns[0])
            addresses = consumer.rotation.addresses
            j = job("ok")
            publisher = server._links.publisher.conn
            assert publisher is not None
            restored = asyncio.Event()
            publisher.reconnect_callbacks.add(lambda *_: restored.set())
            async with server.subscribe(j.id) as sub:
                consumer.rotation.addresses = [NOWHERE]  # it stays away while the job expires
                # The publisher's connection has the same name: it is closed too, and comes back.
                name = names.SERVER_CONNECTION_PREFIX + instance
                await eventually(lambda: close_connections(name), timeout=15, what="closed")
                await eventually(
                    lambda: not consumer.connected.is_set(), timeout=15, what="the server away"
                )
                async with asyncio.timeout(30):
                    await restored.wait()
                await server.submit(j)
                await eventually(
                    lambda: message_count(topo.dlq_queue), timeout=60, what="the job expired"
                )
                consumer.rotation.addresses = addresses
                async with asyncio.timeout(30):
                    events = [e async for e in sub]
            assert [e.type for e in events] == ["failed"]
            assert cast(FailedEvent, events[-1]).code is FailureCode.EXPIRED
            (marked,) = await Markers(tmp_path).outcomes([j.id])
            assert isinstance(marked, FailedEvent)
            assert marked.code is FailureCode.EXPIRED
