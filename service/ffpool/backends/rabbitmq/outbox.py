"""A worker's confirmed events (outcomes, and the progress that must precede them), batched.

Every event a worker's slots produce in one turn of the event loop goes to the servers as one
confirmed message: a JSON array of events (servers read a single event or an array). Under load
a worker finishing dozens of short jobs per turn then costs the broker, and every server, one
message instead of dozens; on the 2-core machines a delivery costs a server about as much CPU
as a job's whole WebSocket exchange (bench/dispatch.py profile).

At most one batch is in flight: its confirm must come back before the next batch is published,
which keeps the events in the order they were put (one channel's messages are routed in order)
and lets a batch grow while the broker is busy. `put` returns once the batch carrying the event
is confirmed, or raises what publishing it raised, so a worker still acks a job only after its
outcome is with the broker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from ffpool.jobs.events import JobEvent

# Events per message: bounds the message (each event is well under 2 KB).
MAX_BATCH = 200


class Outbox:
    def __init__(self, publish: Callable[[list[JobEvent]], Awaitable[None]]) -> None:
        self._publish = publish
        self._pending: list[tuple[JobEvent, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def put(self, event: JobEvent) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieve)  # read even when the caller is gone
        self._pending.append((event, future))
        if self._flusher is None or self._flusher.done():
            # Starts on the loop's next turn: by then this turn's other events are here too.
            self._flusher = asyncio.create_task(self._flush())
        # A cancelled caller leaves its event in the batch: it is published all the same.
        await asyncio.shield(future)

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            try:
                await self._publish([event for event, _ in batch])
            except Exception as exc:  # each caller decides: retry, or requeue its job
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
            else:
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)

    def pending(self) -> int:
        return len(self._pending)


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()
