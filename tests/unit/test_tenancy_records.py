"""Records carry their tenant through every path a RabbitMQ server learns them by: events
folded in any order, lookups between servers, the job's files, and the dead letters."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from ffpool.backends.rabbitmq import attempts, records
from ffpool.backends.rabbitmq.control import LookupReply, parse
from ffpool.backends.rabbitmq.markers import Markers
from ffpool.domain.events import (
    CompletedEvent,
    FailedEvent,
    FailureCode,
    JobRecord,
    JobState,
    StateEvent,
)
from ffpool.domain.jobs import Job, JobSpec, PathInput, ProbeOp
from tests.fakes import events_feed

SPEC = JobSpec(input=PathInput(path="a.mp4"), operation=ProbeOp())


def job(tenant: str = "acme") -> Job:
    return Job(spec=SPEC, tenant=tenant)


def running(j: Job, tenant: str | None = None) -> StateEvent:
    return StateEvent(
        job_id=j.id,
        state=JobState.RUNNING,
        operation="probe",
        tenant=tenant,
        at=j.created_at + timedelta(seconds=1),
    )


def test_state_events_found_and_keep_the_tenant() -> None:
    j = job()
    queued = records.fold(None, records.queued_event(j))
    assert queued is not None
    assert queued.tenant == "acme"
    assert queued.created_at == j.created_at
    later = records.fold(queued, running(j))  # a worker's event without a tenant
    assert later is not None
    assert later.tenant == "acme"
    assert later.state is JobState.RUNNING


def test_late_queued_announcement_does_not_move_a_running_job_back() -> None:
    """The submitting server's `queued` is dated at the job's creation: arriving after the
    worker's `running`, it is not taken for a hand-back."""
    j = job()
    started = records.fold(None, running(j, "acme"))
    assert started is not None
    assert records.fold(started, records.queued_event(j)) == started


def test_an_outcome_alone_leaves_the_tenant_unknown_until_a_state_event_names_it() -> None:
    j = job()
    done = records.fold(None, CompletedEvent(job_id=j.id, processing_time_s=1.0))
    assert done is not None
    assert done.tenant is None
    seen = records.fold(None, running(j))
    assert seen is not None
    assert seen.tenant is None
    learned = records.fold(seen, running(j, "acme"))
    assert learned is not None
    assert learned.tenant == "acme"


def test_from_files_gives_the_tenant_back_from_the_accepted_job() -> None:
    j = job("globex")
    done = CompletedEvent(job_id=j.id, processing_time_s=1.0)
    from_accepted = records.from_files(j.id, j, done, None, cancelled=False)
    assert from_accepted is not None
    assert from_accepted.tenant == "globex"
    assert from_accepted.state is JobState.COMPLETED
    outcome_only = records.from_files(j.id, None, done, None, cancelled=False)
    assert outcome_only is not None
    assert outcome_only.tenant is None


async def test_markers_record_keeps_the_tenant_after_a_restart(tmp_path: Path) -> None:
    j = job("globex")
    await Markers(tmp_path).mark_accepted(j)
    record = await Markers(tmp_path).record(j.id)  # a new process: only the files
    assert record is not None
    assert record.tenant == "globex"


def test_lookup_replies_carry_the_tenant() -> None:
    reply = LookupReply(correlation="c", record=JobRecord.queued(job("globex")))
    parsed = parse(reply.model_dump_json().encode())
    assert isinstance(parsed, LookupReply)
    assert parsed.record.tenant == "globex"


def test_dead_letters_name_their_tenant_from_the_job_body() -> None:
    mine, theirs = job("acme"), job("globex")
    found = [
        (mine.model_dump_json().encode(), {}),
        (theirs.model_dump_json().encode(), {}),
        (b"not a job", {}),
    ]
    assert [r.tenant for r in attempts.dead_letter_records(found, None)] == ["acme", "globex"]
    acme = attempts.dead_letter_records(found, "acme")
    assert [(r.job_id, r.state) for r in acme] == [(mine.id, JobState.FAILED)]


def test_a_held_record_learns_its_tenant_from_the_files_or_a_peer() -> None:
    feed = events_feed()
    j = job()
    feed.ingest(CompletedEvent(job_id=j.id, processing_time_s=1.0))
    learned = feed.remember(JobRecord.queued(j))  # e.g. from the job's accepted record
    assert learned.state is JobState.COMPLETED
    assert learned.tenant == "acme"
    assert feed.cache.get(j.id) == learned
    other = JobRecord.queued(job("globex")).model_copy(update={"job_id": j.id})
    assert feed.remember(other).tenant == "acme"  # a known tenant never changes


async def test_active_jobs_are_counted_from_events_and_recounted_from_files(
    tmp_path: Path,
) -> None:
    markers = Markers(tmp_path)
    feed = events_feed(outcomes=markers.outcomes)
    a, b, c = job(), job(), job("globex")
    for j in (a, b, c):
        feed.ingest(records.queued_event(j))  # announced by whichever server took them
    feed.ingest(running(a))
    assert (feed.active.count("acme"), feed.active.count("globex")) == (2, 1)
    feed.ingest(FailedEvent(job_id=c.id, code=FailureCode.FFMPEG_ERROR, message="x"))
    assert feed.active.count("globex") == 0
    # b's outcome event was lost (a broker restart): its files still tell.
    await markers.mark_completed(CompletedEvent(job_id=b.id, processing_time_s=1.0))
    await feed.recount_active("acme")
    assert feed.active.ids("acme") == [a.id]


async def test_the_accepting_server_ignores_its_own_queued_announcement() -> None:
    """Its client heard `accepted`; a `queued` that changes nothing is neither folded nor sent."""
    feed = events_feed()
    j = job()
    held = feed.remember(JobRecord.queued(j))
    async with feed.hub.subscribe(j.id) as sub:
        assert feed.ingest(records.queued_event(j)) == held
        assert sub.pending() == []
        feed.ingest(running(j, "acme"))
        assert [e.type for e in sub.pending()] == ["state"]
