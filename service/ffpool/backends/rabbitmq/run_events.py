"""Where a run's informational events go (worker_pool.py): to every server, or, for a chunk
job, to its parent's waiting worker only (names.chunk_events_key; servers would make records
of them that clients see). The outcome goes the same way, through the outbox (settler.py).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any

from ffpool import logs
from ffpool.backends.rabbitmq.job_run import Run
from ffpool.backends.rabbitmq.outbox import Outbox, PublishRouted, route_of
from ffpool.backends.rabbitmq.publisher import Publisher
from ffpool.domain.events import JobEvent, JobState, StateEvent
from ffpool.domain.jobs import Job

log = logs.get(__name__)
Send = Callable[[JobEvent], Coroutine[Any, Any, None]]


def routed(publisher: Publisher) -> PublishRouted:
    """The outbox's publish for chunk jobs' confirmed events."""

    async def publish(parent_id: str, events: list[JobEvent]) -> None:
        await publisher.publish_chunk_events(parent_id, events, confirm=True)

    return publish


def state_event(run: Run, state: JobState) -> StateEvent:
    worker = run.worker if state is JobState.RUNNING else None
    return StateEvent.of(run.job, state, attempt=run.attempt, worker=worker)


class RunEvents:
    def __init__(self, publisher: Publisher, outbox: Outbox) -> None:
        self._publisher = publisher
        self._outbox = outbox

    def in_order(self, job: Job) -> Send:
        """On the outcome's (confirmed) channel: a channel's messages are routed in order, so
        an event sent this way reaches its readers before the outcome published next."""
        return functools.partial(self._outbox.put, route=route_of(job))

    async def state(self, run: Run, state: JobState) -> None:
        await self.fast(run.job, state_event(run, state))

    async def fast(self, job: Job, event: JobEvent) -> None:
        """State and progress: informational, the confirmed outcome is what counts."""
        try:
            if (parent_id := route_of(job)) is None:
                await self._publisher.publish_event(event, confirm=False)
            else:
                await self._publisher.publish_chunk_events(parent_id, [event], confirm=False)
        except Exception as exc:  # a channel closed under it, too: never the job's failure
            log.debug("event not published", job_id=event.job_id, error=type(exc).__name__)
