"""Test doubles: an executor that runs on command instead of FFmpeg, metrics that count, and the
few AMQP objects (connection, channel, queue, delivery, publisher) a worker pool or an events
feed touches, so their consumers are driven through `start` as the broker would."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, cast

from ffpool.backends.rabbitmq.feed import EventsFeed
from ffpool.backends.rabbitmq.markers import Markers
from ffpool.backends.rabbitmq.publisher import Publisher
from ffpool.backends.rabbitmq.runs import RunLedger
from ffpool.backends.rabbitmq.worker_pool import WorkerPool
from ffpool.domain.events import (
    CompletedEvent,
    FailedEvent,
    FailureCode,
    JobEvent,
    JobState,
    ProgressEvent,
)
from ffpool.domain.jobs import Job, PathInput
from ffpool.settings import Settings
from ffpool.topology import Topology

Consumer = Callable[[Any], Awaitable[None]]


async def no_outcomes(job_ids: list[str]) -> list[JobEvent]:
    """What the job files tell an events feed when no job has any."""
    return []


async def ignore_dead_letter(event: FailedEvent) -> None:
    """An events feed's `on_dead_letter` when no job files are kept."""


def events_feed(
    capacity: int = 10,
    topo: Topology | None = None,
    outcomes: Callable[[list[str]], Awaitable[Sequence[JobEvent]]] = no_outcomes,
) -> EventsFeed:
    """A server's events feed, instance `s`, over no job files unless `outcomes` reads some."""
    return EventsFeed(
        topo or Topology(),
        "s",
        1.0,
        capacity,
        on_dead_letter=ignore_dead_letter,
        outcomes=outcomes,
    )


class FakeExecutor:
    """Reports 50 % progress, then acts on the job's input path: `fail` fails, `block` waits
    for `release`, `slow` takes 0.3 s, anything else completes at once. With `hold`, every
    job waits for `release` (of its id, or of all jobs)."""

    def __init__(self, *, hold: bool = False) -> None:
        self.hold = hold
        self.started: list[str] = []
        self.cancelled: list[str] = []
        self._gates: dict[str, asyncio.Event] = {}
        self._all = asyncio.Event()

    def release(self, job_id: str | None = None) -> None:
        """Let one held job finish, or (without an id) every held job, now and later."""
        if job_id is None:
            self._all.set()
        else:
            self._gates.setdefault(job_id, asyncio.Event()).set()

    async def execute(
        self, job: Job, on_progress: Callable[[ProgressEvent], None]
    ) -> CompletedEvent | FailedEvent:
        self.started.append(job.id)
        mode = job.spec.input.path if isinstance(job.spec.input, PathInput) else "ok"
        on_progress(ProgressEvent(job_id=job.id, percent=50.0, out_time_s=1.0))
        try:
            if self.hold or mode == "block":
                await self._released(job.id)
            elif mode == "slow":
                await asyncio.sleep(0.3)
        except asyncio.CancelledError:
            self.cancelled.append(job.id)
            raise
        if mode == "fail":
            return FailedEvent(job_id=job.id, code=FailureCode.INVALID_MEDIA, message="bad input")
        return CompletedEvent(job_id=job.id, processing_time_s=0.01)

    async def _released(self, job_id: str) -> None:
        gate = self._gates.setdefault(job_id, asyncio.Event())
        waits = {asyncio.ensure_future(gate.wait()), asyncio.ensure_future(self._all.wait())}
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()


class FakeMetrics:
    def __init__(self) -> None:
        self.submitted = 0
        self.finished: list[tuple[str, JobState]] = []
        self.input_bytes: list[tuple[str, int]] = []

    def observe_submitted(self) -> None:
        self.submitted += 1

    def observe_started(self, operation: str, waited_s: float) -> None:
        return None

    def observe_finished(self, operation: str, state: JobState, seconds: float) -> None:
        self.finished.append((operation, state))

    def observe_completed(
        self, operation: str, media_s: float | None, seconds: float, out_bytes: int
    ) -> None:
        return None

    def observe_input(self, operation: str, in_bytes: int) -> None:
        self.input_bytes.append((operation, in_bytes))

    def observe_reconnect(self) -> None:
        return None


class FakeDelivery:
    """A job delivery as a worker slot receives it; records how it was settled."""

    def __init__(self, job: Job) -> None:
        self.body = job.model_dump_json().encode()
        self.headers: dict[str, Any] = {}
        self.redelivered = False
        self.message_id = job.id
        self.priority: int | None = None
        self.delivery_tag = 1
        self.channel = self  # acks go to the channel without a drain (runner._ack)
        self.settled: list[str] = []

    async def basic_ack(self, delivery_tag: int, wait: bool) -> None:
        self.settled.append("ack")

    async def nack(self, requeue: bool = True) -> None:
        self.settled.append(f"nack(requeue={requeue})")


class FakePublisher:
    quorum = False  # a classic topology: no started markers (settler.py)

    def __init__(self) -> None:
        self.events: list[JobEvent] = []
        self.jobs: list[str] = []

    async def publish_event(self, event: JobEvent, *, confirm: bool) -> None:
        self.events.append(event)

    async def publish_events(self, events: list[JobEvent]) -> None:
        self.events.extend(events)

    async def publish_job(self, job: Job, attempt: int, **_: Any) -> None:
        self.jobs.append(job.id)

    async def publish_dead_letter(self, body: bytes, headers: dict[str, Any]) -> None:
        raise AssertionError("nothing goes to the DLQ here")


class FakeQueue:
    def __init__(self, name: str, conn: FakeConnection) -> None:
        self.name = name
        self._conn = conn

    async def consume(self, callback: Consumer, **_: Any) -> str:
        self._conn.consumers.append((self.name, callback))
        return f"ctag{len(self._conn.consumers)}"

    async def bind(self, exchange: object, **_: Any) -> None: ...

    async def cancel(self, tag: str, **_: Any) -> None: ...

    async def delete(self, **_: Any) -> None: ...


class FakeChannel:
    def __init__(self, conn: FakeConnection) -> None:
        self._conn = conn

    async def set_qos(self, **_: Any) -> None: ...

    async def declare_queue(self, name: str, **_: Any) -> FakeQueue:
        return FakeQueue(name, self._conn)

    async def declare_exchange(self, name: str, *_: Any, **__: Any) -> str:
        return name

    async def get_exchange(self, name: str, **_: Any) -> str:
        return name


class FakeConnection:
    """Stands in for a robust AMQP connection: records each consumer (queue name, callback)
    in the order they start, and `lose` calls the close callbacks as a dropped link does."""

    def __init__(self) -> None:
        self.consumers: list[tuple[str, Consumer]] = []
        self.close_callbacks: set[Callable[[object, BaseException | None], None]] = set()

    async def channel(self, **_: Any) -> FakeChannel:
        return FakeChannel(self)

    def consumer(self, queue_prefix: str, index: int = 0) -> Consumer:
        """The `index`-th consumer of the queues whose name starts with `queue_prefix`."""
        return [cb for name, cb in self.consumers if name.startswith(queue_prefix)][index]

    def lose(self, exc: BaseException) -> None:
        for callback in list(self.close_callbacks):
            callback(self, exc)


async def no_lookup(_job_id: str) -> None:
    """No server to ask about a possible duplicate."""


def worker_pool(tmp_path: Path, publisher: object, executor: FakeExecutor) -> WorkerPool:
    """A WorkerPool on fakes: `publisher` stands in for the real one (tests/unit)."""
    settings = Settings(
        backend="rabbitmq", media_root=tmp_path, instance_name="w", broker_timeout_seconds=2
    )
    return WorkerPool(
        settings,
        Topology.from_settings(settings),
        cast(Publisher, publisher),
        executor,
        FakeMetrics(),
        markers=Markers(tmp_path),
        ledger=RunLedger(),
        lookup=no_lookup,
    )
