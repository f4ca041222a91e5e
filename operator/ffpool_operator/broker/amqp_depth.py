"""Fresh queue depth over AMQP. The management API's counts lag 5-10 s with default broker
statistics (docs/design/rabbitmq.md), while a passive `queue.declare` answers the exact ready
count and consumer count at once; the API still supplies unacked (in-flight) counts and connections.

A plain (non-robust) connection: a robust channel may hand back a cached queue object with a
stale count (docs/design/rabbitmq.md)."""

from __future__ import annotations

import asyncio
from typing import Any

import aio_pika
import aio_pika.exceptions
import aiormq.exceptions
from pydantic import SecretStr

from ffpool import logs
from ffpool_operator.decisions.broker_model import QueueInfo, QueueStatsSource
from ffpool_operator.decisions.victims import BrokerChannel, BrokerConnection

log = logs.get(__name__)
_AMQP_ERRORS = (
    OSError,
    RuntimeError,  # aio-pika's "connection closed"
    TimeoutError,
    aio_pika.exceptions.AMQPException,
    aiormq.exceptions.AMQPError,
)


class AmqpReadyProbe:
    def __init__(self, url: SecretStr, timeout: float = 5.0) -> None:
        self._url = url
        self._timeout = timeout
        self._conn: Any = None

    async def _connection(self) -> Any:
        if self._conn is None or self._conn.is_closed:
            self._conn = await asyncio.wait_for(
                aio_pika.connect(
                    self._url.get_secret_value(),
                    client_properties={"connection_name": "ffpool-operator"},
                ),
                self._timeout,
            )
        return self._conn

    async def counts(self, queue: str) -> tuple[int, int] | None:
        """(ready, consumers), or None when the probe cannot tell (the caller falls back).
        A failure drops the connection and the probe tries once more on a new one: a caller
        cancelled mid-call (a daemon stopping) can leave the shared connection unusable."""
        for _ in range(2):
            if (counts := await self._counts(queue)) is not None:
                return counts
            await self.close()
        return None

    async def _counts(self, queue: str) -> tuple[int, int] | None:
        try:
            conn = await self._connection()
            channel = await asyncio.wait_for(conn.channel(), self._timeout)
            try:
                declared = await asyncio.wait_for(
                    channel.declare_queue(queue, passive=True), self._timeout
                )
                ok = declared.declaration_result
            finally:
                if not channel.is_closed:
                    await channel.close()
        except _AMQP_ERRORS as exc:
            log.info(
                "AMQP depth probe failed; using management API counts", error=type(exc).__name__
            )
            return None
        return int(ok.message_count or 0), int(ok.consumer_count or 0)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed:
            try:
                await asyncio.wait_for(conn.close(), self._timeout)
            except _AMQP_ERRORS as exc:
                log.debug("AMQP depth probe connection not closed", error=type(exc).__name__)


class FreshStats:
    """A QueueStatsSource: the management API's view with ready/consumers made exact by the
    probe. Management API failures still mean "metrics unavailable" (in-flight unknown)."""

    def __init__(self, api: QueueStatsSource, probe: AmqpReadyProbe | None) -> None:
        self.api = api
        self.probe = probe

    async def queue(self, vhost: str, name: str) -> QueueInfo | None:
        info = await self.api.queue(vhost, name)
        if info is None or self.probe is None:
            return info
        counts = await self.probe.counts(name)
        if counts is None:
            return info
        return info.model_copy(update={"messages_ready": counts[0], "consumers": counts[1]})

    async def connections(self, vhost: str) -> list[BrokerConnection]:
        return await self.api.connections(vhost)

    async def channels(self, vhost: str) -> list[BrokerChannel]:
        return await self.api.channels(vhost)
