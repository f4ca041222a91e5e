"""Tenancy over the memory backend: another tenant's job looks exactly unknown, dead letters
are filtered, and a tenant's active jobs and submit rate are limited (injected clock)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from functools import partial

import pytest

from ffpool.backends.admission import Admission, TenantLimits, take
from ffpool.backends.base import JobBackend, RateLimited, TooManyJobs, UnknownJob
from ffpool.backends.memory import MemoryBackend
from ffpool.backends.tenancy import keyed_job_id, scoped
from ffpool.domain.events import JobEvent, JobState
from ffpool.domain.jobs import Job, JobSpec, PathInput, ProbeOp, TrimOp
from ffpool.settings import Settings
from tests.fakes import FakeExecutor, FakeMetrics
from tests.polling import eventually

SPEC = JobSpec(input=PathInput(path="a.mp4"), operation=TrimOp(duration=1))
PROBE = JobSpec(input=PathInput(path="fail"), operation=ProbeOp())  # fails in FakeExecutor
SECRET = b"s" * 32


def job(tenant: str, spec: JobSpec = SPEC) -> Job:
    return Job(spec=spec, tenant=tenant)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def state_is(backend: MemoryBackend, job_id: str, state: JobState) -> bool:
    record = await backend.get(job_id)
    return record is not None and record.state is state


async def dead_count_is(backend: MemoryBackend, count: int) -> bool:
    return len(await backend.dead_letters()) == count


async def active_is(backend: MemoryBackend, tenant: str, count: int) -> bool:
    return await backend.active_jobs(tenant) == count


@pytest.fixture
async def memory() -> AsyncIterator[tuple[MemoryBackend, FakeExecutor]]:
    executor = FakeExecutor(hold=True)
    settings = Settings(max_concurrent_jobs=1, tenant_max_active_jobs=2)
    backend = MemoryBackend(settings, executor, FakeMetrics())
    await backend.start()
    yield backend, executor
    await backend.stop()


# --- keyed job ids ----------------------------------------------------------------------------


def test_keyed_ids_are_stable_32_hex_and_separate_tenants_specs_and_secrets() -> None:
    first = keyed_job_id("order-1", SPEC, "acme", SECRET)
    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert keyed_job_id("order-1", SPEC, "acme", SECRET) == first
    others = {
        keyed_job_id("order-1", SPEC, "globex", SECRET),
        keyed_job_id("order-1", PROBE, "acme", SECRET),
        keyed_job_id("order-2", SPEC, "acme", SECRET),
        keyed_job_id("order-1", SPEC, "acme", b"t" * 32),
    }
    assert first not in others
    assert len(others) == 4


def test_tenant_and_key_cannot_be_shifted_into_each_other() -> None:
    """A tenant ending where a key begins is not the same message (JSON array, not a join)."""
    assert keyed_job_id("b-c", SPEC, "a", SECRET) != keyed_job_id("c", SPEC, "a-b", SECRET)


# --- one tenant's view ------------------------------------------------------------------------


async def test_another_tenants_job_answers_exactly_like_an_unknown_one(
    memory: tuple[MemoryBackend, FakeExecutor],
) -> None:
    backend, _executor = memory
    acme, globex = scoped(backend, "acme"), scoped(backend, "globex")
    theirs = (await acme.submit(job("acme"))).record
    assert theirs.tenant == "acme"
    assert await acme.get(theirs.job_id) == theirs
    assert await globex.get(theirs.job_id) is None
    unknown_id = "f" * 32
    with pytest.raises(UnknownJob) as foreign:
        await globex.cancel(theirs.job_id)
    with pytest.raises(UnknownJob) as unknown:
        await globex.cancel(unknown_id)
    assert str(foreign.value) == str(unknown.value).replace(unknown_id, theirs.job_id)
    assert (await acme.get(theirs.job_id)) is not None  # not cancelled by the other tenant
    assert backend.tenant_of(theirs.job_id) == "acme"
    assert globex.tenant_of(theirs.job_id) is None


async def test_subscribe_to_another_tenants_job_yields_nothing(
    memory: tuple[MemoryBackend, FakeExecutor],
) -> None:
    backend, executor = memory
    acme, globex = scoped(backend, "acme"), scoped(backend, "globex")
    first = job("acme")
    # Both subscribe before the job exists, as a client following its own submit does.
    async with acme.subscribe(first.id) as mine, globex.subscribe(first.id) as spy:
        await acme.submit(first)
        await eventually(lambda: first.id in executor.started, timeout=10, what="the first run")
        assert spy.pending() == []
        executor.release(first.id)
        seen: list[JobEvent] = [event async for event in mine]
        assert [e.type for e in seen] == ["state", "progress", "completed"]
        # The spy's inner subscription got the same events and ended with the job: it let
        # none through.
        assert [event async for event in spy] == []
        assert spy.pending() == []


async def test_pending_events_pass_only_for_the_owner(
    memory: tuple[MemoryBackend, FakeExecutor],
) -> None:
    backend, executor = memory
    acme, globex = scoped(backend, "acme"), scoped(backend, "globex")
    first = job("acme")
    async with acme.subscribe(first.id) as mine, globex.subscribe(first.id) as spy:
        await acme.submit(first)
        await eventually(lambda: first.id in executor.started, timeout=10, what="the first run")
        assert [e.type for e in mine.pending()] == ["state", "progress"]
        assert spy.pending() == []
    executor.release(first.id)


async def test_a_job_of_another_tenant_cannot_be_submitted_through_a_view(
    memory: tuple[MemoryBackend, FakeExecutor],
) -> None:
    backend, _ = memory
    with pytest.raises(ValueError, match="tenant"):
        await scoped(backend, "acme").submit(job("globex"))


async def test_dead_letters_are_the_tenants_own(
    memory: tuple[MemoryBackend, FakeExecutor],
) -> None:
    backend, executor = memory
    failing = [job("acme", PROBE), job("globex", PROBE)]
    for j in failing:
        await scoped(backend, j.tenant).submit(j)
        executor.release(j.id)
    await eventually(partial(dead_count_is, backend, 2), timeout=10, what="two dead letters")
    acme = await scoped(backend, "acme").dead_letters()
    assert [r.job_id for r in acme] == [failing[0].id]
    assert await scoped(backend, "acme").dead_letters(tenant="globex") == []
    assert len(await backend.dead_letters()) == 2  # the ops port's all-tenant view


async def test_active_jobs_are_limited_per_tenant(
    memory: tuple[MemoryBackend, FakeExecutor],
) -> None:
    backend, executor = memory
    acme = scoped(backend, "acme")
    running, queued = job("acme"), job("acme")
    await acme.submit(running)
    await acme.submit(queued)
    assert await backend.active_jobs("acme") == 2
    with pytest.raises(TooManyJobs) as refused:
        await acme.submit(job("acme"))
    assert refused.value.code == "too_many_jobs"
    # Another tenant is not held back by this one, and a resubmission is no new job.
    await scoped(backend, "globex").submit(job("globex"))
    assert (await acme.submit(queued)).duplicate
    await eventually(lambda: running.id in executor.started, timeout=10, what="the run")
    executor.release(running.id)
    await eventually(
        partial(state_is, backend, running.id, JobState.COMPLETED),
        timeout=10,
        what="the run completed",
    )
    assert backend.tenant_of(running.id) == "acme"
    assert await backend.active_jobs("acme") == 1
    await acme.submit(job("acme"))
    await acme.cancel(queued.id)  # running by now: cancelled when its task stops
    await eventually(partial(active_is, backend, "acme", 1), timeout=10, what="one active job")


async def test_submits_per_second_are_limited_per_tenant() -> None:
    settings = Settings(tenant_submits_per_second=2.0)
    backend = MemoryBackend(settings, FakeExecutor(hold=True), FakeMetrics())
    clock = Clock()
    backend.admission = Admission(TenantLimits.from_settings(settings), clock)
    acme: JobBackend = scoped(backend, "acme")
    for _ in range(4):  # the burst: two seconds' worth
        await acme.submit(job("acme"))
    with pytest.raises(RateLimited) as refused:
        await acme.submit(job("acme"))
    assert refused.value.code == "rate_limited"
    assert refused.value.retry_after_s == pytest.approx(0.5)
    await scoped(backend, "globex").submit(job("globex"))  # its own bucket
    clock.now += 0.5
    await acme.submit(job("acme"))
    with pytest.raises(RateLimited):
        await acme.submit(job("acme"))


def test_token_bucket_refills_at_the_rate_up_to_the_burst() -> None:
    limits = TenantLimits(max_active_jobs=1, submits_per_second=10.0, burst=20.0)
    bucket, wait_s = take(None, limits, now=0.0)
    assert (bucket.tokens, wait_s) == (19.0, 0.0)
    empty = bucket.model_copy(update={"tokens": 0.0})
    same, wait_s = take(empty, limits, now=0.05)
    assert wait_s == pytest.approx(0.05)
    assert same.tokens == pytest.approx(0.5)
    refilled, wait_s = take(empty, limits, now=1000.0)
    assert (refilled.tokens, wait_s) == (19.0, 0.0)
