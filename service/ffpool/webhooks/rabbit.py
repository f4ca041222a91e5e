"""Webhooks of the RabbitMQ backend: every delivery a durable, persistent message.

The queue `names.WEBHOOK_QUEUE` (default exchange) is declared by every process, the same
way every time: durable, single active consumer (one server sends at a time, in the queue's
order, so one job's deliveries stay in order; another takes over when it dies), and
dead-lettering to `names.WEBHOOK_DLQ`. A delivery is acked once delivered (or refused with
410) and nacked without requeue, i.e. dead-lettered, once its window is over. Unacked ones
go back to the queue when their server stops or dies: deliveries survive restarts. With
QUEUE_TYPE=quorum both queues are quorum queues (they survive a broker node), when they are
first declared: an existing queue keeps its type (docs/rabbitmq.md, "Broker clusters").
"""

from __future__ import annotations

import asyncio
import math
import random
from typing import Any, Final

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection
from pydantic import ValidationError

from ffpool import logs, names
from ffpool.backends.base import BackendUnavailable
from ffpool.backends.rabbitmq import connection
from ffpool.settings import Settings
from ffpool.topology import QueueType
from ffpool.webhooks.dispatcher import Dispatcher, Item, Outcome
from ffpool.webhooks.model import WebhookDelivery

log = logs.get(__name__)
CONNECTION_PREFIX: Final = "ffpool-webhooks:"
PERSISTENT: Final = 2
# Unacked deliveries one server holds, per WEBHOOK_CONCURRENCY slot: room for the chains of
# jobs whose receiver is down (they hold theirs while retrying) beside the ones that flow.
PREFETCH_PER_SLOT: Final = 8
MAX_PREFETCH: Final = 10_000


def queue_arguments(dlq: str = names.WEBHOOK_DLQ, *, quorum: bool = False) -> dict[str, Any]:
    return {
        "x-single-active-consumer": True,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": dlq,
        **_queue_type(quorum),
    }


def _queue_type(quorum: bool) -> dict[str, Any]:
    """QUEUE_TYPE=quorum makes the webhook queues quorum queues too, when they are first
    declared; existing ones keep their type (declare_queue uses them as they are)."""
    return {"x-queue-type": names.QUEUE_TYPE_QUORUM} if quorum else {}


async def declare(
    channel: AbstractChannel, timeout: float, queue: str, dlq: str, *, quorum: bool = False
) -> aio_pika.abc.AbstractQueue:
    await connection.declare_queue(channel, dlq, _queue_type(quorum), timeout)
    arguments = queue_arguments(dlq, quorum=quorum)
    return await connection.declare_queue(channel, queue, arguments, timeout)


class RabbitQueue:
    """Publishes deliveries (every role) and, in a process that serves clients, consumes them
    into a dispatcher; on a connection of its own."""

    def __init__(
        self,
        settings: Settings,
        *,
        queue: str = names.WEBHOOK_QUEUE,
        dlq: str = names.WEBHOOK_DLQ,
    ) -> None:
        self._queue = queue
        self._dlq = dlq
        self._url = settings.rabbitmq_url.get_secret_value()
        self._addresses = settings.rabbitmq_addresses
        self._quorum = settings.queue_type is QueueType.QUORUM
        self._name = CONNECTION_PREFIX + settings.instance_name
        self._timeout = settings.broker_timeout_seconds
        self._startup_wait_s = settings.broker_startup_wait_seconds
        self._prefetch = min(MAX_PREFETCH, PREFETCH_PER_SLOT * settings.webhook_concurrency)
        self._conn: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self.dispatcher: Dispatcher | None = None

    async def start(self) -> None:
        """Connect (retried like the backend's own connections while the broker is not up),
        declare the queues, and consume if this process sends."""
        self._conn = await self._connect()
        self._channel = await connection.open_channel(
            self._conn, self._timeout, publisher_confirms=True, on_return_raises=True
        )
        await declare(self._channel, self._timeout, self._queue, self._dlq, quorum=self._quorum)
        if self.dispatcher is not None:
            consuming = await connection.open_channel(
                self._conn, self._timeout, publisher_confirms=False
            )
            await consuming.set_qos(prefetch_count=self._prefetch, timeout=self._timeout)
            queue = await declare(
                consuming, self._timeout, self._queue, self._dlq, quorum=self._quorum
            )
            await queue.consume(self._on_message, timeout=self._timeout)

    async def _connect(self) -> AbstractRobustConnection:
        loop = asyncio.get_running_loop()
        wait_s = self._startup_wait_s
        if wait_s is None:
            # As the backend's links.py: serving clients fails fast, a worker waits.
            wait_s = 0.0 if self.dispatcher is not None else math.inf
        deadline, failures = loop.time() + wait_s, 0
        while True:
            try:
                return await connection.connect(
                    self._url, self._name, self._timeout, self._addresses
                )
            except (OSError, aio_pika.exceptions.AMQPError, aiormq.exceptions.AMQPError) as exc:
                failures += 1
                delay = connection.backoff_s(failures, random.random())  # noqa: S311 - jitter
                if loop.time() + delay > deadline:
                    raise BackendUnavailable(f"webhook queue: {type(exc).__name__}") from exc
                log.warning(
                    "cannot reach RabbitMQ for webhooks, retrying", error=type(exc).__name__
                )
                await asyncio.sleep(delay)

    async def stop(self) -> None:
        if self.dispatcher is not None:
            await self.dispatcher.stop()
        await connection.close_quietly(self._conn, self._timeout)
        self._conn = None

    async def put(self, delivery: WebhookDelivery) -> None:
        """The notifier's sink: returns once the broker has the delivery on disk; raises
        BackendUnavailable (or BackendBusy) when it does not."""
        message = aio_pika.Message(
            delivery.model_dump_json().encode(),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=delivery.id,
        )
        await connection.ensure_ready(self._conn, self._timeout)
        if self._channel is None:
            raise BackendUnavailable("the webhook queue is not started")
        try:
            await self._channel.default_exchange.publish(
                message, routing_key=self._queue, mandatory=True, timeout=self._timeout
            )
        except (
            TimeoutError,
            aiormq.exceptions.AMQPError,
            aio_pika.exceptions.AMQPError,
            OSError,
            RuntimeError,
        ) as exc:
            raise BackendUnavailable(f"webhook not queued: {type(exc).__name__}") from exc

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            delivery = WebhookDelivery.model_validate_json(message.body)
        except ValidationError:
            log.warning("dead-lettering an unreadable webhook delivery", id=message.message_id)
            await message.reject(requeue=False)
            return
        if self.dispatcher is not None:
            self.dispatcher.put(Item(delivery, handle=message))

    async def settle(self, item: Item, outcome: Outcome) -> None:
        message = item.handle
        if not isinstance(message, AbstractIncomingMessage):
            return
        try:
            async with asyncio.timeout(self._timeout):
                if outcome is Outcome.DEAD_LETTERED:
                    await message.nack(requeue=False)
                else:
                    await message.ack()
        except Exception as exc:  # a closed channel: the broker redelivers it (same id)
            log.info("webhook delivery not settled", id=item.delivery.id, error=type(exc).__name__)
