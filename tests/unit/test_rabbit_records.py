"""The per-server record cache folded from events arriving in any order."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from ffpool.backends.rabbitmq.control import CancelCommand, LookupReply, LookupRequest, parse
from ffpool.backends.rabbitmq.feed import parse_event
from ffpool.backends.rabbitmq.markers import Markers
from ffpool.backends.rabbitmq.records import UNKNOWN_OPERATION, RecordCache, fold
from ffpool.domain.events import (
    CompletedEvent,
    FailedEvent,
    FailureCode,
    JobRecord,
    JobState,
    ProgressEvent,
    StateEvent,
)
from ffpool.domain.jobs import Job, JobSpec, PathInput, ProbeOp, utcnow
from tests.fakes import events_feed

JOB = "b" * 32


def state(s: JobState, attempt: int = 1, dt: float = 0.0) -> StateEvent:
    return StateEvent(
        job_id=JOB, state=s, operation="probe", attempt=attempt, at=utcnow() + timedelta(seconds=dt)
    )


def test_late_queued_event_does_not_move_a_running_job_back() -> None:
    running = fold(None, state(JobState.RUNNING, dt=1))
    assert running is not None
    assert fold(running, state(JobState.QUEUED, dt=0)) == running


def test_hand_back_after_start_is_taken() -> None:
    running = fold(None, state(JobState.RUNNING, dt=1))
    assert running is not None
    back = fold(running, state(JobState.QUEUED, dt=2))
    assert back is not None
    assert back.state is JobState.QUEUED


def test_older_attempt_is_ignored_newer_is_taken() -> None:
    second = fold(None, state(JobState.RUNNING, attempt=2))
    assert fold(second, state(JobState.RUNNING, attempt=1)) == second
    third = fold(second, state(JobState.QUEUED, attempt=3))
    assert third is not None
    assert (third.state, third.attempt) == (JobState.QUEUED, 3)


def test_terminal_outcome_for_an_unknown_job_is_kept() -> None:
    record = fold(None, CompletedEvent(job_id=JOB, processing_time_s=1.0))
    assert record is not None
    assert (record.state, record.operation) == (JobState.COMPLETED, UNKNOWN_OPERATION)
    assert fold(None, ProgressEvent(job_id=JOB)) is None
    assert fold(record, state(JobState.RUNNING, attempt=5)) == record


def test_cache_is_a_bounded_lru() -> None:
    cache = RecordCache(capacity=2)
    ids = [f"{i:032x}" for i in range(3)]
    for job_id in ids:
        cache.put(
            JobRecord(job_id=job_id, state=JobState.QUEUED, operation="probe", created_at=utcnow())
        )
        cache.get(ids[0])  # keep the first one warm
    assert len(cache) == 2
    assert cache.get(ids[0]) is not None
    assert cache.get(ids[1]) is None
    assert cache.count(JobState.QUEUED) == 2


def test_wire_formats_round_trip() -> None:
    event = state(JobState.RUNNING)
    assert parse_event(event.model_dump_json().encode()) == event
    assert parse_event(b'{"type": "bogus"}') is None
    record = fold(None, event)
    assert record is not None
    for msg in (
        CancelCommand(job_id=JOB),
        LookupRequest(job_id=JOB, correlation="c"),
        LookupReply(correlation="c", record=record),
    ):
        assert parse(msg.model_dump_json().encode()) == msg
    assert parse(b'{"type": "cancel", "job_id": "../x"}') is None


async def test_markers_round_trip(tmp_path: Path) -> None:
    markers = Markers(tmp_path)
    assert await markers.check(JOB) == (None, False)
    done = CompletedEvent(job_id=JOB, processing_time_s=2.0)
    await markers.mark_completed(done)
    await markers.mark_cancelled(JOB)
    assert await markers.check(JOB) == (done, True)
    assert sorted(p.name for p in (tmp_path / "jobs" / JOB).iterdir()) == [
        ".ffpool-cancelled",
        ".ffpool-completed.json",
    ]


async def test_progress_before_the_job_is_recorded_still_reaches_its_subscriber() -> None:
    """A fast worker's progress can beat the submitting server's confirm: the server has no
    record yet, but its client (subscribed before submitting) must see the progress."""
    feed = events_feed()
    async with feed.hub.subscribe(JOB) as sub:
        assert feed.ingest(ProgressEvent(job_id=JOB, percent=50.0)) is None
        feed.ingest(CompletedEvent(job_id=JOB, processing_time_s=1.0))
        feed.ingest(ProgressEvent(job_id=JOB, percent=60.0))  # after the end: not forwarded
        assert [e.type for e in sub.pending()] == ["progress", "completed"]
    record = feed.cache.get(JOB)
    assert record is not None
    assert record.state is JobState.COMPLETED


async def test_an_outcome_whose_event_was_lost_is_read_from_the_jobs_files(
    tmp_path: Path,
) -> None:
    """A broker restart drops transient events: a follower of a job that completed meanwhile
    gets the outcome from the job's files within a resync, and only once."""
    markers = Markers(tmp_path)
    feed = events_feed()
    other = "c" * 32
    feed.ingest(StateEvent(job_id=JOB, state=JobState.RUNNING, operation="probe"))
    async with feed.hub.subscribe(JOB) as sub, feed.hub.subscribe(other) as waiting:
        resync = asyncio.create_task(feed.resync_forever(markers.outcomes, every_s=0.01))
        try:
            await asyncio.sleep(0.05)
            assert sub.pending() == []  # nothing on disk yet: nothing invented
            await markers.mark_completed(CompletedEvent(job_id=JOB, processing_time_s=1.0))
            await markers.mark_cancelled(other)
            async with asyncio.timeout(5):
                assert [e.type async for e in sub] == ["completed"]
                assert [e.type async for e in waiting] == ["cancelled"]
            await asyncio.sleep(0.05)
            assert sub.pending() == []
            assert feed.waiting() == []
        finally:
            resync.cancel()


async def test_outcomes_prefer_the_commit_and_skip_jobs_without_one(tmp_path: Path) -> None:
    markers = Markers(tmp_path)
    done = CompletedEvent(job_id=JOB, processing_time_s=1.0)
    await markers.mark_completed(done)
    await markers.mark_cancelled(JOB)
    failed = FailedEvent(job_id="d" * 32, code=FailureCode.FFMPEG_ERROR, message="bad")
    await markers.mark_failed(failed)
    assert await markers.outcomes([JOB, "d" * 32, "e" * 32, "../x"]) == [done, failed]


def test_a_record_seeded_from_an_outcome_learns_the_jobs_fields() -> None:
    """The outcome of a fast job can reach a server before the submission's record: the
    record held then learns the job's operation, priority, creation time and tenant."""
    feed = events_feed()
    feed.ingest(CompletedEvent(job_id=JOB, processing_time_s=1.0))
    job = Job(
        id=JOB,
        spec=JobSpec(input=PathInput(path="a.mp4"), operation=ProbeOp()),
        priority=7,
        tenant="team-a",
    )
    held = feed.remember(JobRecord.queued(job))
    assert held.state is JobState.COMPLETED
    assert (held.operation, held.priority, held.tenant) == ("probe", 7, "team-a")
    assert held.created_at == job.created_at
    assert feed.remember(JobRecord.queued(job)) == held  # nothing more to learn


async def test_a_stale_queued_announcement_is_not_forwarded() -> None:
    """The accepting server's `queued` (dated at the job's creation) may arrive after the
    worker's `running`: subscribers never see the job go back to queued."""
    feed = events_feed()
    announced = StateEvent(
        job_id=JOB,
        state=JobState.QUEUED,
        operation="probe",
        tenant="t",
        at=utcnow() - timedelta(seconds=5),
    )
    async with feed.hub.subscribe(JOB) as sub:
        feed.ingest(state(JobState.RUNNING))
        feed.ingest(announced)
        handed_back = state(JobState.QUEUED, dt=1.0)  # a real hand-back, after the start
        feed.ingest(handed_back)
        assert [(e.type, getattr(e, "state", None)) for e in sub.pending()] == [
            ("state", JobState.RUNNING),
            ("state", JobState.QUEUED),
        ]
    record = feed.cache.get(JOB)
    assert record is not None
    assert record.state is JobState.QUEUED
