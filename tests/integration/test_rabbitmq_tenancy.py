"""Tenancy across server replicas on RabbitMQ: a job submitted on one server is scoped by its
tenant on another (get, cancel, subscribe, dead letters), the active-job limit is counted
pool-wide, and a server that saw only a job's outcome learns its tenant before showing it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ffpool.backends.base import TooManyJobs, UnknownJob
from ffpool.backends.rabbitmq import build_server, build_worker
from ffpool.backends.tenancy import scoped
from ffpool.domain.events import JobEvent, JobState
from ffpool.domain.jobs import Job, JobSpec, PathInput, ProbeOp
from tests.fakes import FakeExecutor, FakeMetrics
from tests.integration.rabbit_harness import (
    make_settings,
    need_broker,
    prefix_for_test,
    started,
)
from tests.polling import eventually

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
            started(build_server(s1, FakeMetrics())) as one,
            started(build_server(s2, FakeMetrics())) as two,
            started(build_worker(w, FakeMetrics(), executor)),
        ):
            running, queued = job("acme"), job("acme")
            await scoped(one, "acme").submit(running)
            await eventually(lambda: executor.started == [running.id], timeout=15, what="the run")
            await scoped(one, "acme").submit(queued)
            acme, globex = scoped(two, "acme"), scoped(two, "globex")

            # Counted on the other server too (the `queued` announcement, the worker's
            # `running`): the tenant's third job is refused there, another tenant's is not.
            async def counted() -> bool:
                return await two.active_jobs("acme") == 2

            await eventually(counted, timeout=15, what="server2 counts acme's two jobs")
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
                executor.release()
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
            started(build_server(s1, FakeMetrics())) as one,
            started(build_worker(w, FakeMetrics(), executor)),
        ):
            failing, blocked = job("globex", "fail"), job("acme")
            await scoped(one, "globex").submit(failing)
            await scoped(one, "acme").submit(blocked)
            await eventually(
                lambda: blocked.id in executor.started, timeout=15, what="the blocked job started"
            )
            # Started now, this server sees the blocked job's outcome only: no tenant in it.
            async with (
                started(build_server(s2, FakeMetrics())) as two,
                two.subscribe(blocked.id) as events,
            ):
                executor.release()
                await eventually(
                    lambda: any(e.type == "completed" for e in events.pending()),
                    timeout=15,
                    what="server2 folds the outcome",
                )
                record = await scoped(two, "acme").get(blocked.id)  # learned from a peer
                assert record is not None
                assert record.state is JobState.COMPLETED
                assert await scoped(two, "globex").get(blocked.id) is None

                async def dead() -> list[str]:
                    return [r.job_id for r in await scoped(two, "globex").dead_letters()]

                assert await eventually(dead, timeout=15, what="globex's dead letter") == [
                    failing.id
                ]
                assert await scoped(two, "acme").dead_letters() == []
                assert [r.tenant for r in await two.dead_letters()] == ["globex"]
