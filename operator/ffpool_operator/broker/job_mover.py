"""Moves the jobs of a retired priority band into the bands that now hold their priorities
(docs/operator.md, "Priority band changes"). Over AMQP: each job is taken with `basic.get`,
republished unchanged (body, headers, properties) to the job exchange with the routing key of
the band its AMQP priority belongs to, with publisher confirms and `mandatory` (an unroutable
job comes back as an error, never silently dropped), and acked in the old queue only after the
confirm. At least once: a crash between confirm and ack leaves a duplicate, which the workers
skip by the job's id. Bounded per pass, so a large backlog never holds the drift check long.

A plain (non-robust) connection per pass, opened and closed here: a move is rare, and a robust
channel would replay a half-finished state after a reconnect."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aio_pika
import aio_pika.exceptions
import aiormq.exceptions
from pydantic import BaseModel, ConfigDict, SecretStr

from ffpool import logs
from ffpool_operator.decisions.broker_model import BrokerUnavailable

log = logs.get(__name__)
MOVES_PER_PASS = 1000
_AMQP_ERRORS = (
    OSError,
    TimeoutError,
    aio_pika.exceptions.AMQPException,
    aiormq.exceptions.AMQPError,
)


class Moved(BaseModel):
    model_config = ConfigDict(frozen=True)

    moved: int
    """Jobs republished (confirmed) and acked in the old queue during this pass."""
    ready: int
    """Jobs still ready in the old queue after the pass (exact: a passive declare)."""
    consumers: int


def copy(message: Any) -> aio_pika.Message:
    """The job as it was published. `user_id` is left out: the broker checks it against the
    publishing connection's user, and the operator's may differ from the server's."""
    return aio_pika.Message(
        body=message.body,
        headers=message.headers,
        content_type=message.content_type,
        content_encoding=message.content_encoding,
        delivery_mode=message.delivery_mode,
        priority=message.priority,
        correlation_id=message.correlation_id,
        reply_to=message.reply_to,
        expiration=message.expiration,
        message_id=message.message_id,
        timestamp=message.timestamp,
        type=message.type,
        app_id=message.app_id,
    )


async def move(
    url: SecretStr,
    timeout: float,
    queue: str,
    exchange: str,
    route: Callable[[int | None], str],
    limit: int = MOVES_PER_PASS,
) -> Moved:
    """One bounded pass; raises BrokerUnavailable when the broker cannot be reached or the
    queue read (a job not yet acked stays in the old queue)."""
    try:
        conn = await asyncio.wait_for(
            aio_pika.connect(
                url.get_secret_value(),
                client_properties={"connection_name": "ffpool-operator-mover"},
            ),
            timeout,
        )
        async with conn:
            return await _pass(conn, timeout, queue, exchange, route, limit)
    except _AMQP_ERRORS as exc:
        raise BrokerUnavailable(f"moving jobs from {queue}: {type(exc).__name__}") from exc


async def _pass(
    conn: Any,
    timeout: float,
    queue: str,
    exchange: str,
    route: Callable[[int | None], str],
    limit: int,
) -> Moved:
    channel = await asyncio.wait_for(
        conn.channel(publisher_confirms=True, on_return_raises=True), timeout
    )
    old = await asyncio.wait_for(channel.declare_queue(queue, passive=True), timeout)
    target = await asyncio.wait_for(channel.get_exchange(exchange, ensure=False), timeout)
    moved = 0
    while moved < limit:
        message = await asyncio.wait_for(old.get(no_ack=False, fail=False), timeout)
        if message is None:
            break
        key = route(message.priority)
        # Returns when the broker has confirmed it (for a quorum band: on a majority).
        await asyncio.wait_for(
            target.publish(copy(message), routing_key=key, mandatory=True), timeout
        )
        await asyncio.wait_for(message.ack(), timeout)
        moved += 1
    left = await asyncio.wait_for(channel.declare_queue(queue, passive=True), timeout)
    result = left.declaration_result
    if moved:
        log.info("jobs moved", queue=queue, moved=moved, left=int(result.message_count or 0))
    return Moved(
        moved=moved,
        ready=int(result.message_count or 0),
        consumers=int(result.consumer_count or 0),
    )
