"""Everything this process publishes, on its own publishing connection.

Jobs and outcomes go through a channel with publisher confirms, persistent and `mandatory`:
a job is `accepted` only once the broker has it on disk, a full queue (`reject-publish`) nacks
it, and an unroutable one comes back instead of vanishing. Progress and state events, which a
later event supersedes, go through a channel without confirms.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar, cast

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractRobustConnection
from pydantic import BaseModel

from ffpool import logs, names
from ffpool.backends.base import BackendBusy, BackendUnavailable, QueueFull
from ffpool.backends.rabbitmq import attempts, connection, wire
from ffpool.backends.rabbitmq.attempts import REPUBLISHED
from ffpool.domain.events import JobEvent
from ffpool.domain.jobs import Job
from ffpool.topology import Topology

log = logs.get(__name__)
JSON = "application/json"
_T = TypeVar("_T")
Properties = aiormq.spec.Basic.Properties
PERSISTENT = 2
# Routing key of a batch of events; a single event's is its type.
EVENT_BATCH_KEY = "batch"
# A confirm still outstanding after this long checks whether an alarm blocked the connection.
BLOCKED_CHECK_S = 0.25


class Unroutable(BackendUnavailable):
    """The broker returned a mandatory message: no queue is bound for it."""


class Publisher:
    def __init__(self, url: str, conn_name: str, topo: Topology, timeout: float) -> None:
        self._url = url
        self._name = conn_name
        self._topo = topo
        self._timeout = timeout
        self.conn: AbstractRobustConnection | None = None
        self._confirmed: AbstractChannel | None = None
        self._fast: AbstractChannel | None = None

    @property
    def quorum(self) -> bool:
        """Whether the jobs are in quorum queues (which count returns: settler.py)."""
        return self._topo.quorum

    async def start(self, addresses: connection.Addresses = ()) -> None:
        self.conn = await connection.connect(self._url, self._name, self._timeout, addresses)
        self._confirmed = await connection.open_channel(
            self.conn, self._timeout, publisher_confirms=True, on_return_raises=True
        )
        self._fast = await connection.open_channel(
            self.conn, self._timeout, publisher_confirms=False
        )
        # Declared through a robust channel, the topology is declared again after a reconnect.
        await connection.declare_topology(self._confirmed, self._topo, self._timeout)

    async def stop(self) -> None:
        await connection.close_quietly(self.conn, self._timeout)

    async def publish_job(
        self, job: Job, attempt: int, *, wait_s: float | None = None, republished: bool = False
    ) -> None:
        """Persist a job in the queue; raises QueueFull, Unroutable, BackendBusy or
        BackendUnavailable. Returns only after the broker's confirm. A worker's republish
        (retry, hand-back) is marked as such: its copy may duplicate one already run."""
        props = Properties(
            content_type=JSON,
            delivery_mode=PERSISTENT,
            priority=min(job.priority, self._topo.max_priority),
            message_id=job.id,
            headers={
                **wire.job_headers(job),
                names.HEADER_ATTEMPT: attempt,
                names.HEADER_ORIGIN: REPUBLISHED if republished else self._name,
            },
        )
        body = job.model_dump_json().encode()
        key = self._topo.band_for(job.priority).routing_key
        await self._confirm(self._topo.job_exchange, key, body, props, wait_s)

    async def republish_unread(
        self, body: bytes, headers: dict[str, Any], priority: int | None, message_id: str | None
    ) -> None:
        """A job this release cannot read (a newer wire major), back to its band as it came:
        body, wire header and attempt unchanged, for a newer worker (wire.py). In quorum mode
        the queue's `x-delivery-count` is dropped: the new copy's starts again at 0, and the
        attempt is the header's (`attempts.current_attempt`)."""
        carried = dict(headers)
        if self._topo.quorum:
            carried.pop(names.HEADER_DELIVERY_COUNT, None)
            carried[names.HEADER_ATTEMPT] = attempts.current_attempt(headers, quorum=True)
        props = Properties(
            content_type=JSON,
            delivery_mode=PERSISTENT,
            priority=priority,
            message_id=message_id,
            headers={**carried, names.HEADER_ORIGIN: REPUBLISHED},
        )
        key = self._topo.band_for(priority or 0).routing_key
        await self._confirm(self._topo.job_exchange, key, body, props, None)

    async def publish_dead_letter(self, job_body: bytes, headers: dict[str, Any]) -> None:
        props = Properties(
            content_type=JSON,
            delivery_mode=PERSISTENT,
            headers={**wire.headers(), **headers, names.HEADER_ORIGIN: self._name},
        )
        await self._confirm(self._topo.job_exchange, self._topo.dlq_queue, job_body, props, None)

    async def publish_event(self, event: JobEvent, *, confirm: bool) -> None:
        """Terminal events are confirmed (a worker acks its job only after); progress and
        state events are fire-and-forget: the next one supersedes a lost one. Transient even
        when confirmed: the confirm is what lets the worker ack, and a transient message still
        waits in a server's durable events queue while that server reconnects; writing every
        event to disk would cut dispatch throughput."""
        body = event.model_dump_json().encode()
        props = Properties(content_type=JSON, headers=wire.headers())
        exchange = self._topo.events_exchange
        if confirm:
            await self._confirm(exchange, event.type, body, props, None, mandatory=False)
        else:
            await self._send(self._fast, exchange, event.type, body, props, None, False)

    async def publish_events(self, events: list[JobEvent]) -> None:
        """Several events as one confirmed message, a JSON array (outbox.py)."""
        body = b"[" + b",".join(e.model_dump_json().encode() for e in events) + b"]"
        await self._confirm(
            self._topo.events_exchange,
            EVENT_BATCH_KEY,
            body,
            Properties(content_type=JSON, headers=wire.headers()),
            None,
            mandatory=False,
        )

    async def publish_chunk_events(
        self, parent_id: str, events: list[JobEvent], *, confirm: bool
    ) -> None:
        """A chunk job's events, for its parent's worker only: routed by the parent
        (names.chunk_events_key, which servers do not bind) and of the newer wire major, so
        that a server of an older release, which binds every key, leaves them (wire.py)."""
        body = b"[" + b",".join(e.model_dump_json().encode() for e in events) + b"]"
        props = Properties(content_type=JSON, headers=wire.headers(newer=True))
        key = names.chunk_events_key(parent_id)
        exchange = self._topo.events_exchange
        if confirm:
            await self._confirm(exchange, key, body, props, None, mandatory=False)
        else:
            await self._send(self._fast, exchange, key, body, props, None, False)

    async def publish_control(
        self, body: BaseModel, routing_key: str, *, reply_to: str | None = None
    ) -> None:
        props = Properties(content_type=JSON, reply_to=reply_to, headers=wire.headers())
        data = body.model_dump_json().encode()
        await self._confirm(
            self._topo.control_exchange, routing_key, data, props, None, mandatory=False
        )

    async def reply(self, queue_name: str, body: BaseModel) -> None:
        """Answer a control request straight into the asker's queue (default exchange)."""
        props = Properties(content_type=JSON, headers=wire.headers())
        data = body.model_dump_json().encode()
        await self._send(self._fast, "", queue_name, data, props, None, False)

    def _require(self, value: _T | None) -> _T:
        if value is None:
            raise BackendUnavailable("the publisher is not started")
        return value

    async def _send(
        self,
        channel: AbstractChannel | None,
        exchange: str,
        routing_key: str,
        body: bytes,
        props: Properties,
        wait_s: float | None,
        mandatory: bool,
    ) -> None:
        """Publish on the low-level channel, `wait=False`: aio-pika's publish holds the channel
        lock until the frame is sent, serialising publishes (the confirm is awaited outside)."""
        budget = self._timeout if wait_s is None else wait_s
        deadline = asyncio.get_running_loop().time() + budget
        await connection.ensure_ready(self.conn, budget)
        # The concrete aiormq channel takes `wait`; its abstract base does not declare it.
        underlay = cast(aiormq.Channel, await self._underlay(channel, deadline))
        await underlay.basic_publish(
            body,
            exchange=exchange,
            routing_key=routing_key,
            properties=props,
            mandatory=mandatory,
            timeout=self._timeout,
            wait=False,
        )

    async def _underlay(
        self, channel: AbstractChannel | None, deadline: float | None = None
    ) -> aiormq.abc.AbstractChannel:
        """The robust channel's low-level one. aio-pika waits for a reconnect without limit:
        bounded here (until `deadline`, loop time, else for BROKER_TIMEOUT_SECONDS)."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(deadline or loop.time() + self._timeout):
                return await self._require(channel).get_underlay_channel()
        except TimeoutError as exc:
            raise BackendUnavailable("the message broker is unreachable (reconnecting)") from exc

    async def _confirm(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        props: Properties,
        wait_s: float | None,
        *,
        mandatory: bool = True,
    ) -> None:
        send = self._send(self._confirmed, exchange, routing_key, body, props, wait_s, mandatory)
        try:
            await self._unless_blocked(send)
        except aiormq.exceptions.PublishError as exc:
            raise Unroutable(f"no queue is bound for {routing_key!r} on {exchange!r}") from exc
        except aiormq.exceptions.DeliveryError as exc:
            raise QueueFull(self._topo.refused()) from exc
        except TimeoutError as exc:
            raise BackendUnavailable(
                "the broker did not confirm in time; the job may or may not be queued "
                "(resubmit with the same idempotency key)"
            ) from exc
        except (
            aiormq.exceptions.AMQPError,
            aio_pika.exceptions.AMQPError,
            OSError,
            RuntimeError,
            asyncio.InvalidStateError,
        ) as exc:
            raise BackendUnavailable(f"publishing failed: {type(exc).__name__}") from exc

    async def _unless_blocked(self, send: Coroutine[Any, Any, None]) -> None:
        """Await a confirmed publish, but give up with BackendBusy once the connection is
        blocked by an alarm: the broker learns of it only as it reads this very publish, and
        its confirm would otherwise take the whole broker timeout."""
        task = asyncio.create_task(send)
        while True:
            done, _ = await asyncio.wait({task}, timeout=BLOCKED_CHECK_S)
            if done:
                return task.result()
            if await connection.link_state(self.conn) is connection.LinkState.BLOCKED:
                task.cancel()
                await asyncio.wait({task})
                raise BackendBusy(
                    "the broker is refusing publishes (memory or disk alarm); the job may or "
                    "may not be queued (resubmit with the same idempotency key)"
                )

    async def queue_depth(self, queue_name: str) -> int:
        """Ready messages, exact and at once (a passive declare; the management API lags), on
        the low-level channel (a robust channel may hand back a cached queue object)."""
        channel = await self._underlay(self._fast)
        declared = await channel.queue_declare(queue_name, passive=True, timeout=self._timeout)
        return int(declared.message_count or 0)

    async def consumer_count(self, queue_name: str) -> int:
        """Consumers of a queue now, from a passive declare (as `queue_depth`)."""
        channel = await self._underlay(self._fast)
        declared = await channel.queue_declare(queue_name, passive=True, timeout=self._timeout)
        return int(declared.consumer_count or 0)

    async def peek(self, queue_name: str, limit: int) -> list[tuple[bytes, dict[str, Any]]]:
        """Up to `limit` messages of a queue, left in place: fetched unacked on a temporary
        channel whose close puts them back at their original positions."""
        conn = self._require(self.conn)
        channel = await connection.open_channel(conn, self._timeout, publisher_confirms=False)
        found: list[tuple[bytes, dict[str, Any]]] = []
        try:
            queue = await channel.get_queue(queue_name, ensure=False)
            for _ in range(limit):
                async with asyncio.timeout(self._timeout):  # its channel wait is unbounded
                    message = await queue.get(no_ack=False, fail=False)
                if message is None:
                    break
                found.append((message.body, dict(message.headers or {})))
        finally:
            async with asyncio.timeout(self._timeout):
                await channel.close()
        return found
