"""`GET /jobs`' listing on RabbitMQ: a server lists the jobs its records hold, folded from the
events exchange, so jobs submitted on another server are listed too (pool-wide), scoped by
tenant, newest first, with their outcome."""

from __future__ import annotations

from pathlib import Path

import pytest

from ffpool.backends.rabbitmq import build_server, build_worker
from ffpool.backends.tenancy import scoped
from ffpool.domain.events import FailureCode, JobState
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


def job(tenant: str, mode: str = "ok") -> Job:
    return Job(spec=JobSpec(input=PathInput(path=mode), operation=ProbeOp()), tenant=tenant)


async def test_another_server_lists_the_tenants_jobs(tmp_path: Path) -> None:
    async with prefix_for_test() as prefix:
        s1, s2 = (make_settings(prefix, tmp_path, f"server{i}") for i in (1, 2))
        w = make_settings(prefix, tmp_path, "worker1", max_concurrent_jobs=1)
        async with (
            started(build_server(s1, FakeMetrics())) as one,
            started(build_server(s2, FakeMetrics())) as two,
            started(build_worker(w, FakeMetrics(), FakeExecutor())),
        ):
            first, failed, other = job("acme"), job("acme", "fail"), job("globex")
            for submitted in (first, failed, other):
                await scoped(one, submitted.tenant or "").submit(submitted)
            acme = scoped(two, "acme")

            async def all_finished() -> bool:
                rows = await two.jobs(None)  # every tenant's: the ops view
                return len(rows) == 3 and all(r.state.terminal for r in rows)

            await eventually(all_finished, timeout=15, what="server2 lists the three jobs")
            rows = await acme.jobs("acme")
            assert [r.job_id for r in rows] == [failed.id, first.id]  # newest first
            assert rows[0].failure_code is FailureCode.INVALID_MEDIA
            assert rows[1].state is JobState.COMPLETED
            done = await acme.jobs("acme", states=frozenset({JobState.COMPLETED}))
            assert [r.job_id for r in done] == [first.id]
            assert [r.job_id for r in await acme.jobs("acme", limit=1)] == [failed.id]
            assert [r.job_id for r in await scoped(two, "globex").jobs("globex")] == [other.id]
            assert await acme.jobs("globex") == []
