"""A server's view after its connection came back (feed.py), the dead-letter watch's kind
(connection.watch_queue) and the publisher's bounded wait for a reconnecting channel."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

import pytest

from ffpool.backends.base import BackendUnavailable
from ffpool.backends.rabbitmq import connection, feed
from ffpool.backends.rabbitmq.publisher import Publisher
from ffpool.domain.events import CompletedEvent, JobEvent, JobState, StateEvent
from ffpool.domain.jobs import Job, JobSpec, PathInput, ProbeOp
from ffpool.topology import Topology
from tests.fakes import events_feed

IDS = [c * 32 for c in "abcd"]


class FakeFiles:
    """The job files: every job in `done` has completed; each read is recorded."""

    def __init__(self, done: set[str]) -> None:
        self.done = done
        self.reads: list[list[str]] = []

    async def outcomes(self, job_ids: list[str]) -> list[JobEvent]:
        self.reads.append(list(job_ids))
        return [CompletedEvent(job_id=j, processing_time_s=1.0) for j in job_ids if j in self.done]


def running(job_id: str) -> StateEvent:
    return StateEvent(job_id=job_id, state=JobState.RUNNING, operation="probe")


async def test_a_reconnect_reads_every_unfinished_records_outcome_in_batches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Events published while the connection was down are lost to this server: every job it
    holds unfinished, followed here or not, is read from its files once it is back."""
    monkeypatch.setattr(feed, "RESYNC_BATCH", 2)
    files = FakeFiles(done={IDS[0], IDS[2]})
    events = events_feed(outcomes=files.outcomes)
    for job_id in IDS[:3]:
        events.ingest(running(job_id))
    events.ingest(CompletedEvent(job_id=IDS[3], processing_time_s=1.0))
    events._reconnected(object())
    events._reconnected(object())  # one catch-up at a time
    assert events._catch_up is not None
    await asyncio.wait_for(events._catch_up, 5)
    assert files.reads == [IDS[:2], IDS[2:3]]  # finished ones are not read
    done, unfinished = JobState.COMPLETED, JobState.RUNNING
    states = [r.state for j in IDS if (r := events.cache.get(j)) is not None]
    assert states == [done, unfinished, done, done]


async def test_get_of_an_unfinished_record_reads_its_files_at_most_every_resync_s(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(feed, "RESYNC_S", 0.2)
    files = FakeFiles(done=set())
    events = events_feed(outcomes=files.outcomes)
    record = events.ingest(running(IDS[0]))
    assert record is not None
    assert (await events.refreshed(record)).state is JobState.RUNNING
    assert (await events.refreshed(record)).state is JobState.RUNNING
    assert len(files.reads) == 1  # the second `get` came too soon
    files.done.add(IDS[0])
    await asyncio.sleep(0.25)
    assert (await events.refreshed(record)).state is JobState.COMPLETED
    done = events.cache.get(IDS[0])
    assert done is not None
    assert await events.refreshed(done) is done  # finished: no read
    assert len(files.reads) == 2


@pytest.mark.parametrize(
    ("cluster", "quorum", "durable", "exclusive", "kind"),
    [
        (False, False, True, False, None),  # one broker, classic: as the events queue
        (True, False, False, True, None),  # a cluster of classic queues: exclusive
        (True, True, True, False, "quorum"),  # dead letters wait for their server
        (False, True, True, False, "quorum"),
    ],
)
def test_the_dead_letter_watch_is_a_durable_quorum_queue_in_quorum_mode(
    cluster: bool, quorum: bool, durable: bool, exclusive: bool, kind: str | None
) -> None:
    declared = connection.watch_queue(cluster, quorum=quorum)
    assert (declared["durable"], declared["exclusive"]) == (durable, exclusive)
    arguments = declared["arguments"]
    assert arguments.get("x-queue-type") == kind
    assert arguments["x-expires"] == connection.SERVER_QUEUE_EXPIRES_MS


class _Reconnecting:
    """A robust channel whose connection never comes back (aio-pika waits for it)."""

    async def get_underlay_channel(self) -> Any:
        await asyncio.Event().wait()


async def test_a_submit_whose_connection_is_reconnecting_gets_an_answer_within_its_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def ready(conn: object, wait_s: float) -> None:
        """The link looked up a moment ago; the node died since."""

    monkeypatch.setattr(connection, "ensure_ready", ready)
    publisher = Publisher("amqp://x", "s", Topology(), timeout=30.0)
    publisher._confirmed = cast(Any, _Reconnecting())
    publisher._fast = cast(Any, _Reconnecting())
    job = Job(spec=JobSpec(input=PathInput(path="in.mp4"), operation=ProbeOp()))
    started = time.monotonic()
    async with asyncio.timeout(5):
        with pytest.raises(BackendUnavailable):
            await publisher.publish_job(job, attempt=1, wait_s=0.3)
        with pytest.raises(BackendUnavailable):
            await publisher._underlay(publisher._fast, asyncio.get_running_loop().time() + 0.1)
    assert time.monotonic() - started < 2.0
