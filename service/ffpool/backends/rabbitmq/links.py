"""A process's broker connections: its publisher's, and one named connection per consumer role.

Opened together at start (retried with back-off while the broker is unreachable) and closed
together at stop; the process is healthy while none of them is down.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import aio_pika
import aiormq
from aio_pika.abc import AbstractRobustConnection

from ffpool import logs
from ffpool.backends.base import BackendUnavailable, Health
from ffpool.backends.rabbitmq import connection
from ffpool.backends.rabbitmq.publisher import Publisher

log = logs.get(__name__)
_CONNECT_ERRORS = (OSError, aio_pika.exceptions.AMQPError, aiormq.exceptions.AMQPError)


class Links:
    def __init__(
        self,
        url: str,
        publisher: Publisher,
        names: list[str],
        timeout: float,
        startup_wait_s: float,
        on_reconnect: Callable[[], None] | None = None,
        addresses: connection.Addresses = (),
    ) -> None:
        """`on_reconnect`: told each time one of the connections comes back after a loss;
        `addresses`: the broker cluster's other nodes (RABBITMQ_ADDRESSES)."""
        self._addresses = addresses
        self._on_reconnect = on_reconnect
        self._url = url
        self.publisher = publisher
        self._names = names
        self._timeout = timeout
        self._startup_wait_s = startup_wait_s
        self._conns: list[AbstractRobustConnection] = []

    async def open(self) -> list[AbstractRobustConnection]:
        """The publisher's connection, then one per name (in order, returned); while the broker
        is unreachable retried with back-off for `startup_wait_s`, then BackendUnavailable."""
        log.info(
            "connecting to RabbitMQ",
            url=logs.mask_url(self._url),
            addresses=[str(a) for a in self._addresses],
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._startup_wait_s
        failures = 0
        while True:
            try:
                await self.publisher.start(self._addresses)
                for name in self._names:
                    conn = await connection.connect(self._url, name, self._timeout, self._addresses)
                    self._conns.append(conn)
                for opened in (self.publisher.conn, *self._conns):
                    if opened is not None:
                        opened.reconnect_callbacks.add(self._reconnected)
                return list(self._conns)
            except _CONNECT_ERRORS as exc:
                await self.close()
                failures += 1
                delay = connection.backoff_s(failures, random.random())  # noqa: S311 - jitter
                url = logs.mask_url(self._url)
                if loop.time() + delay > deadline:
                    reason = f"cannot reach RabbitMQ at {url}: {type(exc).__name__}"
                    raise BackendUnavailable(reason) from exc
                log.warning(
                    "cannot reach RabbitMQ, retrying",
                    url=url,
                    retry_in_s=round(delay, 2),
                    error=type(exc).__name__,
                )
                await asyncio.sleep(delay)

    def _reconnected(self, *_: object) -> None:
        log.info("broker connection restored")
        if self._on_reconnect is not None:
            self._on_reconnect()

    async def close(self) -> None:
        for conn in reversed(self._conns):
            await connection.close_quietly(conn, self._timeout)
        self._conns.clear()
        await self.publisher.stop()

    def health(self) -> Health:
        conns = [self.publisher.conn, *self._conns]
        down = any(connection.link_state_now(c) is connection.LinkState.DOWN for c in conns)
        return Health.UNHEALTHY if down else Health.HEALTHY
