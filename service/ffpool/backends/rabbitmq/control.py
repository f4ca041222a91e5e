"""The control exchange: cancel broadcasts to workers, and job lookups between servers.

Every process has one exclusive, auto-delete control queue. Workers bind `cancel` (a cancel
reaches whichever worker runs the job, wherever it is); servers bind `lookup` and answer with
the record they hold, so a server that never saw a job can ask the others (request/reply into
the asker's own queue) instead of needing a database.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Literal, TypedDict

from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from ffpool import logs
from ffpool.backends.base import BackendError
from ffpool.backends.rabbitmq import connection, wire
from ffpool.backends.rabbitmq.publisher import Publisher
from ffpool.domain.events import JobRecord
from ffpool.domain.jobs import JobId
from ffpool.topology import Topology

log = logs.get(__name__)


class _Msg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CancelCommand(_Msg):
    type: Literal["cancel"] = "cancel"
    job_id: JobId


class LookupRequest(_Msg):
    type: Literal["lookup"] = "lookup"
    job_id: JobId
    correlation: str = Field(max_length=64)


class LookupReply(_Msg):
    type: Literal["lookup_reply"] = "lookup_reply"
    correlation: str = Field(max_length=64)
    record: JobRecord


ControlMessage = Annotated[CancelCommand | LookupRequest | LookupReply, Field(discriminator="type")]
_adapter: TypeAdapter[CancelCommand | LookupRequest | LookupReply] = TypeAdapter(ControlMessage)


def parse(body: bytes) -> CancelCommand | LookupRequest | LookupReply | None:
    """Fields a newer minor wire version added are ignored (wire.py)."""
    return wire.parse(_adapter, body)


class Hears(TypedDict, total=False):
    """What a process's control queue is bound to, by role (backend.py): a worker hears
    cancels, a server answers lookups, `ffpool serve` does both. Every process hears the
    replies to its own lookups."""

    cancel: Callable[[str], None]
    lookup: Callable[[str], JobRecord | None]


class Control:
    def __init__(
        self, publisher: Publisher, topo: Topology, instance: str, timeout: float, hears: Hears
    ) -> None:
        self._publisher = publisher
        self._topo = topo
        self._instance = instance
        self._timeout = timeout
        self._hears = hears
        self._queue: AbstractQueue | None = None
        self._waiting: dict[str, asyncio.Future[JobRecord]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, conn: AbstractRobustConnection) -> None:
        channel = await connection.open_channel(conn, self._timeout)
        exchange = await connection.control_exchange(channel, self._topo, self._timeout)
        name = f"{self._topo.control_exchange}:{self._instance}:{uuid.uuid4().hex[:8]}"
        self._queue = await channel.declare_queue(
            name,
            exclusive=True,
            auto_delete=True,
            arguments=connection.server_queue_arguments(),
            timeout=self._timeout,
        )
        for routing_key in self._hears:
            await self._queue.bind(exchange, routing_key=routing_key, timeout=self._timeout)
        await self._queue.consume(self._on_message, no_ack=True, timeout=self._timeout)

    async def broadcast_cancel(self, job_id: str) -> None:
        await self._publisher.publish_control(CancelCommand(job_id=job_id), "cancel")

    async def lookup(self, job_id: str, wait_s: float) -> JobRecord | None:
        """Ask every server for a job's record; the first answer wins, silence means unknown."""
        if self._queue is None:
            return None
        correlation = uuid.uuid4().hex
        future: asyncio.Future[JobRecord] = asyncio.get_running_loop().create_future()
        self._waiting[correlation] = future
        try:
            request = LookupRequest(job_id=job_id, correlation=correlation)
            await self._publisher.publish_control(request, "lookup", reply_to=self._queue.name)
            async with asyncio.timeout(wait_s):
                return await future
        except (TimeoutError, BackendError):
            return None
        finally:
            self._waiting.pop(correlation, None)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        if not wire.readable(message.headers):
            # A cancel is also a marker file a worker reads before running a job; a lookup
            # unanswered here is answered by a newer server, or counts as unknown.
            wire.warn_unreadable("a control message", message.headers)
            return
        msg = parse(message.body)
        match msg:
            case CancelCommand() if (cancel := self._hears.get("cancel")) is not None:
                cancel(msg.job_id)
            case LookupRequest() if (answer := self._hears.get("lookup")) and message.reply_to:
                record = answer(msg.job_id)
                if record is not None:
                    reply = LookupReply(correlation=msg.correlation, record=record)
                    self._spawn(self._reply(message.reply_to, reply))
            case LookupReply():
                future = self._waiting.get(msg.correlation)
                if future is not None and not future.done():
                    future.set_result(msg.record)
            case _:
                log.warning("ignored a control message", routing_key=message.routing_key)

    async def _reply(self, queue_name: str, reply: LookupReply) -> None:
        try:
            await self._publisher.reply(queue_name, reply)
        except (BackendError, TimeoutError) as exc:
            log.warning("lookup reply failed", error=type(exc).__name__)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
