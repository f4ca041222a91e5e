"""A worker's consumers on the job queue: one channel with prefetch 1 per slot (worker_pool.py).

`make_slots` chooses them: these consumers for a single job queue (classic, or quorum with one
band), band_slots.py's loops when a quorum topology has several priority bands.

A slot may also be lent for a while (`lend`): a worker whose job waits for its chunk jobs
(docs/chunks.md) keeps its machine busy through one consumer more. Lent slots are consumers
like the others: a drain cancels them too, a lost connection stops their runs too; when the
loan ends its consumer is cancelled, a delivery it holds is settled as any slot's, and only
then is its channel closed (closing it first would requeue that delivery).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aio_pika.abc import (
    AbstractChannel,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)

from ffpool import logs
from ffpool.backends.rabbitmq import connection
from ffpool.backends.rabbitmq.band_slots import BandSlots, GiveBack
from ffpool.topology import Topology

log = logs.get(__name__)
OnMessage = Callable[[int, AbstractIncomingMessage], Awaitable[None]]
Handler = Callable[[int], "asyncio.Task[None] | None"]


@dataclass
class _Consumer:
    channel: AbstractChannel
    queue: AbstractQueue
    tag: str


class Slots:
    def __init__(self, topo: Topology, timeout: float, on_message: OnMessage) -> None:
        self._topo = topo
        self._timeout = timeout
        self._on_message = on_message
        self._consumers: dict[int, _Consumer] = {}
        self._conn: AbstractRobustConnection | None = None
        self._lent_ids: itertools.count[int] = itertools.count()
        self._closing: set[asyncio.Task[None]] = set()

    async def start(self, conn: AbstractRobustConnection, count: int) -> None:
        self._conn = conn
        self._lent_ids = itertools.count(count)
        for index in range(count):
            await self._open(index)
            log.info("RabbitMQ worker started", worker=index)

    async def _open(self, index: int) -> None:
        if self._conn is None:
            raise RuntimeError("the worker pool is not started")
        channel = await connection.open_channel(self._conn, self._timeout)
        await channel.set_qos(prefetch_count=1, timeout=self._timeout)
        queue = await connection.declare_queue(
            channel, self._topo.job_queue, self._topo.queue_arguments(), self._timeout
        )
        callback = functools.partial(self._on_message, index)
        tag = await queue.consume(callback, timeout=self._timeout)
        self._consumers[index] = _Consumer(channel, queue, tag)

    async def cancel_all(self) -> None:
        """Take no more deliveries on any slot (a drain)."""
        consumers, self._consumers = self._consumers, {}
        for consumer in consumers.values():
            await self._cancel(consumer)

    async def _cancel(self, consumer: _Consumer) -> None:
        try:
            await consumer.queue.cancel(consumer.tag, timeout=self._timeout)
        except Exception as exc:
            log.debug("consumer cancel failed", error=type(exc).__name__)

    @asynccontextmanager
    async def lend(self, handler: Handler, closed: Callable[[], bool]) -> AsyncIterator[None]:
        """One slot more while inside, unless `closed()` (draining) or not started; `handler`
        gives the task handling a slot's delivery, if any."""
        index = next(self._lent_ids)
        lent: _Consumer | None = None
        if not closed() and self._conn is not None:
            try:
                await self._open(index)
                lent = self._consumers[index]
                log.info("worker slot lent", worker=index)
            except Exception as exc:  # no slot lent: the waiting job waits all the same
                log.warning("lending a slot failed", error=type(exc).__name__)
        try:
            yield
        finally:
            if lent is not None:
                if self._consumers.pop(index, None) is not None:  # else a drain cancelled it
                    await self._cancel(lent)
                task = asyncio.create_task(self._close_after(lent.channel, handler, index))
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)

    async def _close_after(self, channel: AbstractChannel, handler: Handler, index: int) -> None:
        """Close a lent slot's channel once its delivery (if any) is settled."""
        await asyncio.sleep(0)  # a delivery dispatched before the cancel starts its handler
        if (running := handler(index)) is not None:
            await asyncio.wait({running})
        try:
            async with asyncio.timeout(self._timeout):
                await channel.close()
        except Exception as exc:
            log.debug("lent channel not closed", error=type(exc).__name__)


def make_slots(
    topo: Topology,
    timeout: float,
    on_message: OnMessage,
    give_back: GiveBack,
    running: Handler,
) -> Slots | BandSlots:
    """The slots of a worker pool: `give_back` republishes a delivery not run (band slots
    only), `running` gives the task handling a slot's delivery, if any."""
    if len(topo.bands()) > 1:
        return BandSlots(topo, timeout, on_message, give_back, running)
    return Slots(topo, timeout, on_message)
