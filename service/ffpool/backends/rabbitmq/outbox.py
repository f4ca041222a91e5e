"""A worker's confirmed events (outcomes, and the progress that must precede them), batched.

Every event a worker's slots produce in one turn of the event loop goes to the servers as one
confirmed message: a JSON array of events (servers read a single event or an array), at most
`MAX_BATCH` of them. Under load a worker finishing dozens of short jobs per turn then costs the
broker, and every server, one message instead of dozens; on a 2-core machine a delivery
costs a server about as much CPU as a job's whole WebSocket exchange (bench/dispatch.py).

At most one batch is in flight: its confirm must come back before the next batch is published,
which keeps the events in the order they were put (one channel's messages are routed in order)
and lets the next batch grow while the broker is busy. `put` returns once the batch carrying the
event is confirmed, or raises BackendError, so a worker still acks a job only after its outcome
is with the broker. It may wait for the batch ahead of its own first: at most twice the
publisher's broker timeout.

A chunk job's events go to its parent's worker only (names.chunk_events_key): `put` with the
parent's id as `route`, and each batch is published as one message per route.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable

from ffpool import logs
from ffpool.backends.base import BackendError, BackendUnavailable
from ffpool.domain.events import JobEvent
from ffpool.domain.jobs import Job

log = logs.get(__name__)
# Events per message: bounds the message (each event is well under 2 KB).
MAX_BATCH = 200
_Entry = tuple[JobEvent, "asyncio.Future[None]", str | None]
Publish = Callable[[list[JobEvent]], Awaitable[None]]
PublishRouted = Callable[[str, list[JobEvent]], Awaitable[None]]


def route_of(job: Job) -> str | None:
    """Where a job's events go: its parent's route for a chunk job, else the servers (None)."""
    return job.chunk.parent if job.chunk is not None else None


class Outbox:
    def __init__(self, publish: Publish, publish_routed: PublishRouted | None = None) -> None:
        self._publish = publish
        self._publish_routed = publish_routed
        self._pending: list[_Entry] = []
        self._flusher: asyncio.Task[None] | None = None

    async def put(self, event: JobEvent, route: str | None = None) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieve)  # read even when the caller is gone
        self._pending.append((event, future, route))
        if self._flusher is None or self._flusher.done():
            # Starts on the loop's next turn: by then this turn's other events are here too.
            self._flusher = asyncio.create_task(self._flush())
        # A cancelled caller leaves its event in the batch: it is published all the same.
        await asyncio.shield(future)

    async def _flush(self) -> None:
        batch: list[_Entry] = []
        try:
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                for route in dict.fromkeys(r for _, _, r in batch):  # in order of arrival
                    part = [entry for entry in batch if entry[2] == route]
                    _resolve(part, await self._send([e for e, _, _ in part], route))
                batch = []
        finally:
            # Only if this task itself was cancelled (shutdown): no put may wait forever.
            stranded, self._pending = batch + self._pending, []
            _resolve(stranded, BackendUnavailable("the worker is stopping"))

    async def _send(self, events: list[JobEvent], route: str | None) -> BackendError | None:
        try:
            if route is None:
                await self._publish(events)
            elif self._publish_routed is None:
                return BackendUnavailable("this outbox publishes no routed events")
            else:
                await self._publish_routed(route, events)
        except BackendError as exc:
            return exc
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            # aiormq fails pending confirms with CancelledError when it finds its connection
            # stuck (missed heartbeats): a lost connection, like any other.
            return BackendUnavailable("the broker connection was lost before the confirm")
        except Exception as exc:  # a bug must not strand the slots waiting on this batch
            log.exception("publishing events failed")
            return BackendUnavailable(f"publishing events failed: {type(exc).__name__}")
        return None

    def pending(self) -> int:
        return len(self._pending)


def _resolve(batch: list[_Entry], error: BackendError | None) -> None:
    for _, future, _ in batch:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:  # one exception object per caller: raising one in many tasks piles tracebacks
            future.set_exception(copy.copy(error))


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()
