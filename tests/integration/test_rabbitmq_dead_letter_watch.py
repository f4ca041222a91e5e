"""QUEUE_TYPE=quorum on the normal broker: a job the broker dead-letters (its TTL ran out)
while its server's connection is down still reaches the waiting client as `expired`, and its
failed marker is written: the server's dead-letter watch is a durable quorum queue that keeps
the dead letter until the server is back (feed.py, docs/rabbitmq.md "Broker clusters")."""

from __future__ import annotations

import asyncio
import base64
import uuid
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

import aio_pika
import aiohttp
import pytest

from ffpool import names
from ffpool.backends.rabbitmq import build_server
from ffpool.backends.rabbitmq.markers import Markers
from ffpool.backends.rabbitmq.transport import CoalescingConnection
from ffpool.broker_addresses import BrokerAddress
from ffpool.domain.events import FailedEvent, FailureCode
from ffpool.topology import Topology
from tests.fakes import FakeMetrics
from tests.integration.rabbit_harness import AMQP_URL, job, make_settings, need_broker, started
from tests.integration.test_rabbitmq_quorum import QUORUM, quorum_prefix
from tests.polling import eventually

pytestmark = [pytest.mark.rabbitmq, pytest.mark.timeout(120)]

MGMT = "http://127.0.0.1:15672/api"
GUEST = {"Authorization": "Basic " + base64.b64encode(b"guest:guest").decode()}
# Nothing listens here: the server's reconnects fail until the test gives its address back.
NOWHERE = BrokerAddress(host="127.0.0.1", port=1)


@pytest.fixture(autouse=True)
def _broker() -> None:
    need_broker()


async def close_connections(name: str) -> int:
    """Close (management API) every broker connection named `name`; how many there were."""
    async with aiohttp.ClientSession(headers=GUEST, timeout=aiohttp.ClientTimeout(5)) as http:
        async with http.get(f"{MGMT}/connections") as resp:
            listed: list[dict[str, Any]] = await resp.json()
        found = [
            c["name"]
            for c in listed
            if c.get("client_properties", {}).get("connection_name") == name
        ]
        for conn in found:
            async with http.delete(f"{MGMT}/connections/{quote(conn, safe='')}") as resp:
                resp.raise_for_status()
    return len(found)


async def dead_lettered(queue: str) -> int:
    conn = await aio_pika.connect(AMQP_URL, timeout=5)
    async with conn:
        channel = await conn.channel()
        declared = await channel.declare_queue(queue, passive=True, timeout=5)
        return int(declared.declaration_result.message_count or 0)


async def test_a_job_that_expires_while_its_server_reconnects_is_reported_expired(
    tmp_path: Path,
) -> None:
    instance = f"watch-{uuid.uuid4().hex[:8]}"
    async with quorum_prefix() as prefix:
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
                    lambda: dead_lettered(topo.dlq_queue), timeout=60, what="the job expired"
                )
                consumer.rotation.addresses = addresses
                async with asyncio.timeout(30):
                    events = [e async for e in sub]
            assert [e.type for e in events] == ["failed"]
            assert cast(FailedEvent, events[-1]).code is FailureCode.EXPIRED
            (marked,) = await Markers(tmp_path).outcomes([j.id])
            assert isinstance(marked, FailedEvent)
            assert marked.code is FailureCode.EXPIRED
