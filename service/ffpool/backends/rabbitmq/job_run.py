"""One job run on a worker slot: the run, its informational events, and how it ended.

What is recorded for the outcome, and when the job's deliveries are acked, is settler.py's.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from aio_pika.abc import AbstractIncomingMessage

from ffpool import logs
from ffpool.backends.base import BackendError, JobExecutor
from ffpool.domain.events import (
    CancelledEvent,
    CompletedEvent,
    FailedEvent,
    FailureCode,
    JobEvent,
    ProgressEvent,
    StateEvent,
)
from ffpool.domain.jobs import Job

log = logs.get(__name__)
# A job's `running` state is published only once it has run this long (see ProgressSender).
RUNNING_EVENT_DELAY_S = 0.1


class Stop(enum.Enum):
    CLIENT = "client"  # cancelled by a client: the job ends as `cancelled`
    HAND_BACK = "hand_back"  # drain/stop: the job goes back to the queue, same attempt
    LOST = "lost"  # the consuming connection dropped: the broker redelivers the job


class Crash:
    """The executor raised (it should not): requeue so the attempt count applies."""


class Lost:
    """The job's delivery died with its connection: the broker has already requeued it, so
    the run is stopped (no job runs twice at once) and nothing is published for it."""


Outcome = CompletedEvent | FailedEvent | CancelledEvent | Crash | Lost | None  # None: hand back


class ProgressSender:
    """A run's informational events: its `running` state, then its latest progress, one
    publish in flight at most (bounded, never blocks FFmpeg's progress reader).

    The `running` state goes out only once the job has run `delay_s`; progress seen before
    then waits and follows it. A job that finishes sooner publishes no `running` state, only
    its last progress sample (if any) before its outcome: one publish, one delivery to every
    server and one client frame fewer per short job (docs/rabbitmq.md, "Dispatch benchmark")."""

    def __init__(
        self,
        publish: Callable[[JobEvent], Coroutine[Any, Any, None]],
        running: StateEvent,
        *,
        publish_last: Callable[[JobEvent], Coroutine[Any, Any, None]],
        delay_s: float = RUNNING_EVENT_DELAY_S,
    ) -> None:
        self._publish = publish
        self._publish_last = publish_last
        self._running: StateEvent | None = running
        self._latest: ProgressEvent | None = None
        self._task: asyncio.Task[None] | None = None
        self._timer = asyncio.get_running_loop().call_later(delay_s, self._announce)
        self.announced = False  # whether the `running` state was (or is being) published

    def __call__(self, event: ProgressEvent) -> None:
        self._latest = event
        if self.announced:
            self._kick()

    def _announce(self) -> None:
        self.announced = True
        self._kick()

    def _kick(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        if self._running is not None:
            state, self._running = self._running, None
            await self._send(self._publish, state)
        while self._latest is not None:
            event, self._latest = self._latest, None
            await self._send(self._publish, event)

    @staticmethod
    async def _send(
        publish: Callable[[JobEvent], Coroutine[Any, Any, None]], event: JobEvent
    ) -> None:
        try:
            await publish(event)
        except (BackendError, TimeoutError) as exc:
            log.debug("event not published", job_id=event.job_id, error=str(exc))

    async def close(self, timeout: float) -> None:
        """The outcome is known: no `running` state any more. What is in flight goes out
        (bounded), then a sample not sent yet (a short job's) through `publish_last`, the
        outcome's own channel, so that it reaches the servers before the outcome."""
        self._timer.cancel()
        if self._task is not None and not self._task.done():
            await asyncio.wait({self._task}, timeout=timeout)
        last, self._latest = self._latest, None
        if last is not None:
            await self._send(self._publish_last, last)


@dataclass
class Run:
    job: Job
    attempt: int
    worker: str
    deliveries: list[AbstractIncomingMessage]
    started: float = field(default_factory=time.monotonic)
    task: asyncio.Task[CompletedEvent | FailedEvent] | None = None
    stop: Stop | None = None
    notified: bool = False  # its `running` webhook was queued (settler.py)

    def request_stop(self, why: Stop) -> None:
        if self.stop is None:
            self.stop = why
        if self.task is not None:
            self.task.cancel()


async def execute(
    run: Run, executor: JobExecutor, progress: ProgressSender, limit_s: float | None
) -> Outcome:
    """Run the executor; a broker-imposed `limit_s` (consumer timeout) fails it as timeout."""
    run.task = asyncio.create_task(executor.execute(run.job, progress))
    if run.stop is not None:
        run.task.cancel()
    done, _ = await asyncio.wait({run.task}, timeout=limit_s)
    if not done:
        run.task.cancel()
        await asyncio.wait({run.task})
        if run.stop is None:
            return FailedEvent(
                job_id=run.job.id,
                code=FailureCode.TIMEOUT,
                message=f"stopped after {limit_s:g} s, before the broker's consumer timeout",
            )
    if run.stop is Stop.LOST:
        return Lost()
    if run.task.cancelled() or run.stop is not None:
        return CancelledEvent(job_id=run.job.id) if run.stop is Stop.CLIENT else None
    if (exc := run.task.exception()) is not None:
        log.error("executor raised", job_id=run.job.id, error=repr(exc))
        return Crash()
    return run.task.result()
