"""Worker slots over several priority bands (quorum mode, docs/rabbitmq.md "Priority bands").

Quorum queues have no priorities, so each band is a queue of its own (topology.py), and a free
slot must take from the highest band that holds a job. Consumers alone cannot do that: quorum
queues refuse a per-channel (global) prefetch, and prefetch 1 per consumer on every band hands
a free slot one job of EVERY non-empty band at once, while returning the extras with a nack
adds to their `x-delivery-count` (the delivery limit's count; not an attempt: attempts.py
counts runs that started). So each slot is a task with its own channel:

1. Free, it asks every band with basic.get, highest first, and runs the first job found; it
   waits for that delivery's handler to finish (the pool's `running`), then loops.
2. When every band is empty it consumes on each (prefetch 1 per consumer) until the first
   delivery, then cancels its consumers (a delivery sent before a cancel-ok arrives before
   it), runs the highest-band one received and gives every other back UNCOUNTED: republished
   to its band with its header attempt and no `x-delivery-count` (band_pick.py),
   confirmed, and only then the original acked. The copy joins the tail of its band.
3. A drain (`cancel_all`) stops every loop from taking more; deliveries a waiting slot gets
   meanwhile are given back. A lent slot (`lend`) is a loop for the loan's length; any
   slot's channel is closed only once its delivery is settled (closing first would requeue
   it, a return the broker counts).
4. A failed broker call (a closed channel, a lost connection) closes the slot's channel and
   retries with a back-off until the robust connection is back; only a stop ends the loop.

Strict priority holds between bands at the moment a slot is free (a job published just after
its band was asked waits for the next free slot); within a band it is FIFO; a running job is
never pre-empted.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import aiormq
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection
from aio_pika.message import IncomingMessage

from ffpool import logs
from ffpool.backends.rabbitmq import band_pick, connection
from ffpool.topology import Band, Topology

log = logs.get(__name__)
OnMessage = Callable[[int, AbstractIncomingMessage], Awaitable[None]]
Running = Callable[[int], "asyncio.Task[None] | None"]
GiveBack = Callable[[bytes, dict[str, Any], int | None, str | None], Awaitable[None]]
Received = list[tuple[int, AbstractIncomingMessage]]
# How often a slot waiting on its consumers checks that its channel is still open.
CHANNEL_CHECK_S = 1.0
# Back-off after a failed broker call: doubles from the base up to the cap, never ends.
RETRY_BASE_S = 0.2
RETRY_CAP_S = 5.0


@dataclass
class _Slot:
    index: int
    running: Running
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    idle: asyncio.Event = field(default_factory=asyncio.Event)  # not asking the broker now
    channel: AbstractChannel | None = None


class BandSlots:
    def __init__(
        self,
        topo: Topology,
        timeout: float,
        on_message: OnMessage,
        give_back: GiveBack,
        running: Running,
    ) -> None:
        self._bands = topo.bands()
        self._topo = topo
        self._timeout = timeout
        self._on_message = on_message
        self._give_back = give_back
        self._running = running
        self._slots: dict[int, _Slot] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._conn: AbstractRobustConnection | None = None
        self._lent_ids: itertools.count[int] = itertools.count()

    async def start(self, conn: AbstractRobustConnection, count: int) -> None:
        self._conn = conn
        self._lent_ids = itertools.count(count)
        for index in range(count):
            await self._spawn(_Slot(index, self._running), declare=index == 0)
            log.info("RabbitMQ worker started", worker=index, bands=len(self._bands))

    async def _spawn(self, slot: _Slot, *, declare: bool = False) -> None:
        """Open the slot's channel (failing here fails the start, as for classic slots) and
        run its loop."""
        slot.idle.set()
        slot.channel = await self._open()
        if declare:
            for band in self._bands:
                args = self._topo.queue_arguments()
                await connection.declare_queue(slot.channel, band.queue, args, self._timeout)
        self._slots[slot.index] = slot
        task = asyncio.create_task(self._loop(slot))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _open(self) -> AbstractChannel:
        if self._conn is None:
            raise RuntimeError("the worker pool is not started")
        return await connection.open_channel(self._conn, self._timeout, publisher_confirms=False)

    async def cancel_all(self) -> None:
        """Take no more jobs on any slot (a drain): returns once no slot asks the broker."""
        slots, self._slots = list(self._slots.values()), {}
        await self._stop(slots)

    async def _stop(self, slots: list[_Slot]) -> None:
        """Stop `slots` taking jobs; return once none asks the broker (or after a bound)."""
        for slot in slots:
            slot.stop.set()
        # Each may be cancelling its consumers and giving deliveries back: a few calls each.
        with suppress(TimeoutError):
            async with asyncio.timeout(self._timeout * (2 + 2 * len(self._bands))):
                for slot in slots:
                    await slot.idle.wait()

    @asynccontextmanager
    async def lend(self, handler: Running, closed: Callable[[], bool]) -> AsyncIterator[None]:
        """One slot more while inside, unless `closed()` (draining) or not started; `handler`
        gives the task handling a slot's delivery, if any."""
        slot: _Slot | None = None
        if not closed() and self._conn is not None:
            try:
                slot = _Slot(next(self._lent_ids), handler)
                await self._spawn(slot)
                log.info("worker slot lent", worker=slot.index)
            except Exception as exc:  # no slot lent: the waiting job waits all the same
                log.warning("lending a slot failed", error=type(exc).__name__)
                slot = None
        try:
            yield
        finally:
            if slot is not None:
                self._slots.pop(slot.index, None)
                await self._stop([slot])  # its channel closes once its delivery is settled

    async def _loop(self, slot: _Slot) -> None:
        failures = 0
        try:
            while not slot.stop.is_set():
                try:
                    await self._turn(slot)
                    failures = 0
                except Exception as exc:  # a closed channel, a lost connection, a timeout
                    if slot.stop.is_set():
                        break
                    failures += 1
                    log.warning(
                        "worker slot: broker call failed, retrying",
                        worker=slot.index,
                        error=type(exc).__name__,
                        failures=failures,
                    )
                    await self._drop_channel(slot)
                    pause = min(RETRY_CAP_S, RETRY_BASE_S * 2.0 ** min(failures - 1, 10))
                    with suppress(TimeoutError):
                        async with asyncio.timeout(pause):
                            await slot.stop.wait()
        finally:
            slot.idle.set()
            await self._close_when_settled(slot)

    async def _turn(self, slot: _Slot) -> None:
        """Take one job (or none, when stopped) and wait until it is handled."""
        if slot.channel is None or slot.channel.is_closed:
            await self._drop_channel(slot)
            slot.channel = await self._open()
        async with asyncio.timeout(self._timeout):  # it waits for a reconnecting connection
            underlay = await slot.channel.get_underlay_channel()
        slot.idle.clear()
        try:
            message = await self._take(slot, underlay)
        finally:
            slot.idle.set()
        if message is None:
            return
        await self._on_message(slot.index, message)
        if (task := slot.running(slot.index)) is not None:
            await asyncio.wait({task})

    async def _take(
        self, slot: _Slot, underlay: aiormq.abc.AbstractChannel
    ) -> AbstractIncomingMessage | None:
        """The job to run: the first found asking the bands highest first, else the best of
        what the slot's consumers receive first. None when the slot stopped meanwhile."""
        received: Received = []
        for rank, band in enumerate(self._bands):
            if slot.stop.is_set():
                break
            got = await underlay.basic_get(band.queue, no_ack=False, timeout=self._timeout)
            if isinstance(got.delivery, aiormq.spec.Basic.GetOk):
                received.append((rank, IncomingMessage(got, no_ack=False)))
                break
        if not received and not slot.stop.is_set():
            received = await self._consume_until_one(slot, underlay)
        kept, extra = band_pick.pick(received)
        if kept is not None and slot.stop.is_set():
            extra, kept = received, None
        for rank, message in extra:
            await self._give_back_one(message, self._bands[rank])
        return kept

    async def _consume_until_one(
        self, slot: _Slot, underlay: aiormq.abc.AbstractChannel
    ) -> Received:
        """Consume on every band until a delivery comes (or the slot stops); every delivery
        received before the consumers' cancel-oks, in arrival order."""
        received: Received = []
        arrived = asyncio.Event()

        def on_band(
            rank: int,
        ) -> Callable[[aiormq.abc.DeliveredMessage], Coroutine[Any, Any, None]]:
            async def deliver(message: aiormq.abc.DeliveredMessage) -> None:
                # No await before the append: aiormq runs this in a task it creates as the
                # frame arrives, so it has run by the time a later cancel-ok is awaited.
                received.append((rank, IncomingMessage(message, no_ack=False)))
                arrived.set()

            return deliver

        await underlay.basic_qos(prefetch_count=1, timeout=self._timeout)
        tags: list[str] = []
        for rank, band in enumerate(self._bands):
            ok = await underlay.basic_consume(band.queue, on_band(rank), timeout=self._timeout)
            tags.append(str(ok.consumer_tag))
        await self._until_either(arrived, slot.stop, underlay)
        for tag in tags:
            await underlay.basic_cancel(tag, timeout=self._timeout)
        await asyncio.sleep(0)  # let a delivery task created with the last cancel-ok run
        return received

    async def _until_either(
        self, one: asyncio.Event, other: asyncio.Event, underlay: aiormq.abc.AbstractChannel
    ) -> None:
        """Wait for either event; raise once the channel is closed (its consumers died)."""
        waits = {asyncio.create_task(one.wait()), asyncio.create_task(other.wait())}
        try:
            while not (one.is_set() or other.is_set()):
                await asyncio.wait(
                    waits, timeout=CHANNEL_CHECK_S, return_when=asyncio.FIRST_COMPLETED
                )
                if underlay.is_closed and not (one.is_set() or other.is_set()):
                    raise ConnectionError("the slot's channel closed while waiting")
        finally:
            for wait in waits:
                wait.cancel()

    async def _give_back_one(self, message: AbstractIncomingMessage, band: Band) -> None:
        """Republish a delivery not run to its band, uncounted, then ack it; if the copy
        cannot be published, nack it instead (the broker counts that return)."""
        headers = band_pick.give_back_headers(message.headers)
        priority = band_pick.give_back_priority(message.priority, band)
        try:
            await self._give_back(message.body, headers, priority, message.message_id)
        except Exception as exc:
            log.warning(
                "giving a delivery back failed: requeueing it",
                message_id=message.message_id,
                error=type(exc).__name__,
            )
            await self._settle(message, ack=False)
            return
        log.info("delivery given back uncounted", message_id=message.message_id, band=band.queue)
        await self._settle(message, ack=True)

    async def _settle(self, message: AbstractIncomingMessage, *, ack: bool) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                await (message.ack() if ack else message.nack(requeue=True))
        except Exception as exc:  # the channel is gone: the broker requeues it anyway
            log.warning("settling a delivery failed", error=type(exc).__name__)

    async def _drop_channel(self, slot: _Slot) -> None:
        channel, slot.channel = slot.channel, None
        if channel is None:
            return
        try:
            async with asyncio.timeout(self._timeout):
                await channel.close()
        except Exception as exc:
            log.debug("slot channel not closed", error=type(exc).__name__)

    async def _close_when_settled(self, slot: _Slot) -> None:
        """Close a stopped slot's channel once its delivery (if any) is settled."""
        if (task := slot.running(slot.index)) is not None:
            await asyncio.wait({task})
        await self._drop_channel(slot)
