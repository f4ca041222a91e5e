"""In-process fan-out of job events to subscribers, with bounded per-subscriber buffers.

Shared by both backends: the memory backend publishes here directly, the RabbitMQ backend from
its per-server events queue. A slow subscriber loses progress samples (the next one supersedes
them), never a terminal event.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ffpool.domain.events import JobEvent, ProgressEvent

SUBSCRIBER_BUFFER = 256
TERMINAL_TYPES = frozenset({"completed", "failed", "cancelled"})


class Subscription:
    def __init__(self, job_id: str, maxsize: int = SUBSCRIBER_BUFFER) -> None:
        self.job_id = job_id
        self._queue: asyncio.Queue[JobEvent] = asyncio.Queue(maxsize)

    def offer(self, event: JobEvent) -> None:
        if self._queue.full():
            if isinstance(event, ProgressEvent):
                return
            self._queue.get_nowait()
        self._queue.put_nowait(event)

    def pending(self) -> list[JobEvent]:
        """Events already buffered, without waiting."""
        events = []
        while not self._queue.empty():
            events.append(self._queue.get_nowait())
        return events

    async def __aiter__(self) -> AsyncIterator[JobEvent]:
        while True:
            event = await self._queue.get()
            yield event
            if event.type in TERMINAL_TYPES:
                return


class EventHub:
    def __init__(self) -> None:
        self._subs: defaultdict[str, set[Subscription]] = defaultdict(set)

    def publish(self, event: JobEvent) -> None:
        for sub in tuple(self._subs.get(event.job_id, ())):
            sub.offer(event)

    def subscribed(self) -> list[str]:
        """The jobs someone follows here."""
        return list(self._subs)

    @asynccontextmanager
    async def subscribe(self, job_id: str) -> AsyncIterator[Subscription]:
        sub = Subscription(job_id)
        self._subs[job_id].add(sub)
        try:
            yield sub
        finally:
            subs = self._subs.get(job_id)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[job_id]
