"""A worker's informational events: `running` only for jobs still running after the delay."""

from __future__ import annotations

import asyncio

from ffpool.backends.rabbitmq.job_run import ProgressSender
from ffpool.domain.events import JobEvent, JobState, ProgressEvent, StateEvent

JOB = "c" * 32
RUNNING = StateEvent(job_id=JOB, state=JobState.RUNNING, operation="probe", worker="w/0")


SAMPLES = {p: ProgressEvent(job_id=JOB, percent=p, out_time_s=p / 10) for p in (10, 40, 60, 100)}


def progress(percent: int) -> ProgressEvent:
    return SAMPLES[percent]


class Sink:
    """Both publish paths in one list; `in_order` marks what went the outcome's way."""

    def __init__(self) -> None:
        self.events: list[JobEvent] = []
        self.in_order: list[JobEvent] = []
        self.changed = asyncio.Event()

    async def publish(self, event: JobEvent) -> None:
        self.events.append(event)
        self.changed.set()

    async def publish_last(self, event: JobEvent) -> None:
        self.in_order.append(event)
        await self.publish(event)

    def sender(self, delay_s: float) -> ProgressSender:
        return ProgressSender(
            self.publish, RUNNING, publish_last=self.publish_last, delay_s=delay_s
        )

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(5):
            while len(self.events) < count:
                self.changed.clear()
                await self.changed.wait()


async def test_a_job_done_before_the_delay_publishes_no_running_state() -> None:
    sink = Sink()
    sender = sink.sender(delay_s=60)
    await sender.close(timeout=5)
    assert sink.events == []
    assert not sender.announced


async def test_a_short_job_keeps_only_its_last_progress_sample() -> None:
    sink = Sink()
    sender = sink.sender(delay_s=60)
    sender(progress(40))
    sender(progress(100))
    await sender.close(timeout=5)
    assert sink.events == [progress(100)]
    assert sink.in_order == [progress(100)]  # the outcome's channel: it cannot overtake it
    assert not sender.announced


async def test_a_long_job_announces_running_then_its_progress_in_order() -> None:
    sink = Sink()
    sender = sink.sender(delay_s=0.01)
    sender(progress(10))  # before the announcement: waits for it
    await sink.wait_for(2)
    assert sink.events == [RUNNING, progress(10)]
    assert sender.announced
    sender(progress(60))
    await sender.close(timeout=5)
    assert sink.events == [RUNNING, progress(10), progress(60)]
    assert sink.in_order == []
