"""Tenancy across server replicas on RabbitMQ: a job submitted on one server is scoped by its
tenant on another (get, cancel, subscribe, dead letters), the active-job limit is counted
pool-wide, and a server that saw only a job's outcome learns its tenant before showing it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ffpool.backends.base import TooManyJobs, UnknownJob
from ffpool.backends.rabbitmq import RabbitBackend
from ffpool.backends.tenancy import scoped
from ffpool.domain.events import JobEvent, JobState
from ffpool.domain.jobs import Job, JobSpec, PathInput, ProbeOp
from tests.integration.test_rabbitmq_helpers import (
    FakeExecutor,
    FakeMetrics,
    eventually,
    make_settings,
    need_broker,
    prefix_for_test,
    started,
)

pytestmark = pytest.mark.rabbitmq


@pytest.fixture(autouse=True)
def _broker() -> None:
    need_broker()


def job(tenant: str, mode: str = "block") -> Job:
    return Job(spec=JobSpec(input=PathInput(path=mode), operation=ProbeOp()), tenant=tenant)


async def test_a_job_submitted_on_one_server_is_scoped_by_tenant_on_another(
    tmp_path: Path,
) -> None:
    async with prefix_for_test() as prefix:
        limits = {"tenant_max_active_jobs": 2}
        s1, s2 = (make_settings(prefix, tmp_path, f"server{i}", **limits) for i in (1, 2))
        w = make_settings(prefix, tmp_path, "worker1", max_concurrent_jobs=1)
        executor = FakeExecutor()
        async with (
            started(RabbitBackend(s1, FakeMetrics(), None)) as one,
            started(RabbitBackend(s2, FakeMetrics(), None)) as two,
            started(RabbitBackend(w, FakeMetrics(), executor, serve_clients=False)),
        ):
            running, queued = job("acme"), job("acme")
            await scoped(one, "acme").submit(running)
            await eventually(lambda: asyncio.sleep(0, executor.started == [running.id]))
            await scoped(one, "acme").submit(queued)
            acme, globex = scoped(two, "acme"), scoped(two, "globex")

            # Counted on the other server too (the `queued` announcement, the worker's
            # `running`): the tenant's third job is refused there, another tenant's is not.
            async def counted() -> bool:
                return await two.active_jobs("acme") == 2

            await eventually(counted, what="server2 counts acme's two jobs")
            with pytest.raises(TooManyJobs):
                await acme.submit(job("acme", "ok"))
            await globex.submit(job("globex", "ok"))

            record = await acme.get(running.id)
            assert record is not None
            assert record.tenant == "acme"
            assert await globex.get(running.id) is None
            with pytest.raises(UnknownJob) as foreign:
                await globex.cancel(queued.id)
            assert str(foreign.value) == f"no job {queued.id}"
            assert (await acme.get(queued.id)) is not None

            async with acme.subscribe(running.id) as mine, globex.subscribe(running.id) as spy:
                executor.release.set()
                async with asyncio.timeout(15):
                    seen: list[JobEvent] = [e async for e in mine]
                    assert seen[-1].type == "completed"
                    assert [e async for e in spy] == []


async def test_dead_letters_and_outcome_only_records_are_the_tenants_own(
    tmp_path: Path,
) -> None:
    async with prefix_for_test() as prefix:
        s1, s2 = (make_settings(prefix, tmp_path, f"server{i}") for i in (1, 2))
        w = make_settings(prefix, tmp_path, "worker1", max_concurrent_jobs=1)
        executor = FakeExecutor()
        async with (
            started(RabbitBackend(s1, FakeMetrics(), None)) as one,
            started(RabbitBackend(w, FakeMetrics(), executor, serve_clients=False)),
        ):
            failing, blocked = job("globex", "fail"), job("acme")
            await scoped(one, "globex").submit(failing)
            await scoped(one, "acme").submit(blocked)
            await eventually(lambda: asyncio.sleep(0, blocked.id in executor.started))
            # Started now, this server sees the blocked job's outcome only: no tenant in it.
            async with started(RabbitBackend(s2, FakeMetrics(), None)) as two:
                executor.release.set()

                async def outcome_seen() -> bool:
                    record = two._require_feed().cache.get(blocked.id)
                    return record is not None and record.state is JobState.COMPLETED

                await eventually(outcome_seen, what="server2 folds the outcome")
                record = await scoped(two, "acme").get(blocked.id)  # learned from a peer
                assert record is not None
                assert record.state is JobState.COMPLETED
                assert await scoped(two, "globex").get(blocked.id) is None

                async def dead() -> list[str]:
                    return [r.job_id for r in await scoped(two, "globex").dead_letters()]

                assert await eventually(dead, what="globex's dead letter") == [failing.id]
                assert await scoped(two, "acme").dead_letters() == []
                assert [r.tenant for r in await two.dead_letters()] == ["globex"]
