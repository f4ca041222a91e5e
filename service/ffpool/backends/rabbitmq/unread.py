"""A job this release cannot read (a newer wire major, wire.py), handed to a newer worker.

Republished as it came, attempt unchanged, to its band, then acked: a nack would requeue it
marked redelivered, which the next worker counts as a lost attempt (attempts.py; a quorum
queue counts it in `x-delivery-count`). Only when the republish is refused is it nacked, at
that cost. The slot holds it
`DELAY_S` first, so that while only older workers run the job circles the queue at that pace
instead of in a hot loop.
"""

from __future__ import annotations

import asyncio

from aio_pika.abc import AbstractIncomingMessage

from ffpool import logs
from ffpool.backends.base import BackendError
from ffpool.backends.rabbitmq import wire
from ffpool.backends.rabbitmq.publisher import Publisher
from ffpool.backends.rabbitmq.settler import ack_all, nack_all

log = logs.get(__name__)
DELAY_S = 1.0


async def leave_for_newer(
    publisher: Publisher, message: AbstractIncomingMessage, timeout: float
) -> None:
    wire.warn_unreadable("a job", message.headers)
    await asyncio.sleep(DELAY_S)
    try:
        await publisher.republish_unread(
            message.body, dict(message.headers or {}), message.priority, message.message_id
        )
    except BackendError as exc:
        log.warning("unreadable job not republished, requeueing", error=str(exc))
        await nack_all([message], timeout)
        return
    await ack_all([message], timeout)
