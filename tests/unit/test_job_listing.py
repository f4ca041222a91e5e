"""`GET /jobs`'s listing in every backend: newest first, limited, by state, one tenant's only;
records whose tenant is not known and chunk jobs are never listed for a tenant."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from ffpool.backends import tenancy
from ffpool.backends.memory import MemoryBackend
from ffpool.backends.rabbitmq.markers import Markers
from ffpool.backends.rabbitmq.server import RabbitServer
from ffpool.domain.events import (
    CompletedEvent,
    FailedEvent,
    FailureCode,
    JobRecord,
    JobState,
    ProgressEvent,
    StateEvent,
)
from ffpool.domain.jobs import ChunkTask, Job, JobSpec, PathInput, TrimOp, chunk_job_id
from ffpool.domain.listing import (
    MAX_LIMIT,
    BadQuery,
    JobSummary,
    newest,
    parse_limit,
    parse_query,
    parse_states,
)
from ffpool.settings import Settings
from tests.fakes import FakeExecutor, FakeMetrics, events_feed
from tests.polling import eventually

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def record(n: int, tenant: str | None = "acme", state: JobState = JobState.QUEUED) -> JobRecord:
    return JobRecord(
        job_id=f"{n:032x}",
        state=state,
        operation="trim",
        created_at=T0 + timedelta(seconds=n),
        tenant=tenant,
    )


def ids(rows: list[JobSummary]) -> list[int]:
    return [int(r.job_id, 16) for r in rows]


def test_newest_first_limited_by_state_and_tenant() -> None:
    records = [record(1), record(3, state=JobState.RUNNING), record(2), record(4, "globex")]
    records.append(record(5, tenant=None))  # known from its outcome alone: nobody's
    assert ids(newest(records, "acme", 10)) == [3, 2, 1]
    assert ids(newest(records, "acme", 2)) == [3, 2]
    assert ids(newest(records, "acme", 10, frozenset({JobState.QUEUED}))) == [2, 1]
    assert ids(newest(records, "globex", 10)) == [4]
    assert ids(newest(records, None, 10)) == [5, 4, 3, 2, 1]  # the ops view: every tenant


def test_summary_fields() -> None:
    job_id = f"{1:032x}"
    running = record(1, state=JobState.RUNNING).model_copy(
        update={"progress": ProgressEvent(job_id=job_id, percent=42.5)}
    )
    assert JobSummary.of(running).percent == 42.5
    failure = FailedEvent(job_id=job_id, code=FailureCode.FFMPEG_ERROR, message="boom")
    failed = record(1, state=JobState.FAILED).model_copy(update={"failure": failure})
    assert JobSummary.of(failed).failure_code is FailureCode.FFMPEG_ERROR
    done = record(1, state=JobState.COMPLETED)
    assert JobSummary.of(done).percent == 100.0
    assert set(JobSummary.of(done).model_dump()) == {
        "job_id",
        "state",
        "operation",
        "priority",
        "created_at",
        "started_at",
        "finished_at",
        "percent",
        "attempt",
        "failure_code",
    }


def test_query_parsing() -> None:
    assert parse_query([], []) == (100, None)
    assert parse_query(["5"], ["queued, running"]) == (
        5,
        frozenset({JobState.QUEUED, JobState.RUNNING}),
    )
    assert parse_query([str(MAX_LIMIT)], [""]) == (MAX_LIMIT, None)
    assert parse_states(None) is None


def test_a_repeated_state_adds_its_states() -> None:
    _, states = parse_query([], ["queued", "completed,failed", ""])
    assert states == frozenset({JobState.QUEUED, JobState.COMPLETED, JobState.FAILED})


@pytest.mark.parametrize(
    ("limit", "state", "words"),
    [
        (["0"], [], "limit must be a whole number from 1 to 1000"),
        (["1001"], [], "not '1001'"),
        (["ten"], [], "not 'ten'"),
        (["-1"], [], "limit"),
        # Digits to str.isdigit, but not numbers to int() or not ASCII: refused, not a 500.
        (["\u00b2"], [], "limit must be a whole number"),
        (["\u0661\u0662"], [], "limit must be a whole number"),
        (["1e3"], [], "limit must be a whole number"),
        (["99999999999999999999"], [], "limit must be a whole number"),
        (["5", "6"], [], "limit may be given once"),
        ([], ["queued,done"], "state 'done' is not one of queued, running, completed"),
        ([], ["queued", "done"], "state 'done' is not one of"),
    ],
)
def test_bad_queries_in_words(limit: list[str], state: list[str], words: str) -> None:
    with pytest.raises(BadQuery, match=words):
        parse_query(limit, state)


def test_parse_limit_is_the_dead_letters_parser_too() -> None:
    assert parse_limit([]) == 100
    assert parse_limit([" 7 "]) == 7
    with pytest.raises(BadQuery):
        parse_limit(["0"])


def trim(tenant: str, path: str = "a.mp4") -> Job:
    spec = JobSpec(input=PathInput(path=path), operation=TrimOp(duration=1))
    return Job(spec=spec, tenant=tenant)


@pytest.fixture
async def memory() -> AsyncIterator[tuple[MemoryBackend, FakeExecutor]]:
    executor = FakeExecutor(hold=True)
    backend = MemoryBackend(
        Settings(max_concurrent_jobs=1, max_queued_jobs=9), executor, FakeMetrics()
    )
    await backend.start()
    yield backend, executor
    await backend.stop()


async def test_memory_backend_lists_through_the_tenant_view(
    memory: tuple[MemoryBackend, FakeExecutor],
) -> None:
    backend, executor = memory
    first, second, other = trim("acme"), trim("acme"), trim("globex")
    for job in (first, second, other):
        await backend.submit(job)
    await eventually(lambda: executor.started == [first.id], timeout=10, what="first started")
    acme = tenancy.scoped(backend, "acme")
    assert [r.job_id for r in await acme.jobs("acme")] == [second.id, first.id]
    running = await acme.jobs("acme", states=frozenset({JobState.RUNNING}))
    assert [r.job_id for r in running] == [first.id]
    assert [r.job_id for r in await acme.jobs("acme", limit=1)] == [second.id]
    assert await acme.jobs("globex") == []  # asking for another tenant's: nothing
    assert [r.job_id for r in await backend.jobs(None)] == [other.id, second.id, first.id]
    executor.release(first.id)


async def test_memory_backend_never_lists_chunk_jobs(
    memory: tuple[MemoryBackend, FakeExecutor],
) -> None:
    backend, _ = memory
    parent = trim("acme")
    await backend.submit(parent)
    chunk = Job(
        id=chunk_job_id(parent.id, 0),
        spec=parent.spec,
        tenant="acme",
        chunk=ChunkTask(parent=parent.id, index=0, count=2, start_s=0.0, duration_s=2.0),
    )
    await backend.subjobs().submit([chunk])
    assert [r.job_id for r in await backend.jobs("acme")] == [parent.id]
    assert [r.job_id for r in await backend.jobs(None)] == [parent.id]


async def test_rabbitmq_server_lists_from_its_records(tmp_path: Path) -> None:
    feed = events_feed(capacity=4)
    links = cast(Any, SimpleNamespace(publisher=None))
    server = RabbitServer(
        Settings(), FakeMetrics(), links, feed, Markers(tmp_path), cast(Any, None)
    )
    jobs = [trim("acme"), trim("globex"), trim("acme"), trim("acme")]
    for n, job in enumerate(jobs):
        queued = StateEvent.of(job, JobState.QUEUED, at=T0 + timedelta(seconds=n))
        feed.ingest(queued)
    # An outcome of a job never seen queued here: its tenant is not known, nobody's.
    stranger = f"{9:032x}"
    feed.ingest(CompletedEvent(job_id=stranger, processing_time_s=1.0))
    acme = tenancy.scoped(server, "acme")
    # The cache holds 4 of the 5: the oldest (jobs[0]) was forgotten.
    assert [r.job_id for r in await acme.jobs("acme")] == [jobs[3].id, jobs[2].id]
    assert [r.job_id for r in await server.jobs("globex")] == [jobs[1].id]
    assert stranger in [r.job_id for r in await server.jobs(None)]
    queued_only = await server.jobs("acme", states=frozenset({JobState.COMPLETED}))
    assert queued_only == []
