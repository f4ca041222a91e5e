"""Quorum attempts count runs that started, not the broker's returns (docs/rabbitmq.md, "Quorum
queues"): RabbitMQ 3.10 adds to `x-delivery-count` for every return, also of deliveries that
never ran (the in-flight delivery of a consumer a waiting band slot cancels, the prefetched
deliveries of a connection that drops). With MAX_ATTEMPTS=1 any such return counted as an
attempt dead-letters a job that never ran: here none may be, and every job runs as attempt 1.
Each test measures the highest `x-delivery-count` a worker saw (the slack the broker's delivery
limit needs, topology.DELIVERY_LIMIT_SLACK). Local broker, unique topology, deleted after."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from ffpool import names
from ffpool.backends.rabbitmq import attempts, build_node
from ffpool.backends.rabbitmq.backend import RabbitNode
from ffpool.domain.events import JobRecord, JobState
from ffpool.topology import DELIVERY_LIMIT_SLACK, Topology
from tests.fakes import FakeExecutor, FakeMetrics
from tests.integration.rabbit_harness import (
    QUORUM,
    close_connections,
    job,
    make_settings,
    need_broker,
    prefix_for_test,
    queue_info,
    started,
)
from tests.polling import eventually

pytestmark = [pytest.mark.rabbitmq, pytest.mark.timeout(120)]
PRIORITIES = (0, 5, 9, 0)  # one burst: every band, the lowest twice


@pytest.fixture(autouse=True)
def _broker() -> None:
    need_broker()


class Returns:
    """The highest `x-delivery-count` any delivery carried (attempts.delivery_count is read
    on every delivery a worker handles)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.highest = 0
        real = attempts.delivery_count

        def counting(headers: Mapping[str, Any] | None) -> int:
            found = real(headers)
            self.highest = max(self.highest, found)
            return found

        monkeypatch.setattr(attempts, "delivery_count", counting)

    def check(self) -> None:
        """Within the slack the broker's delivery limit allows for returns."""
        print(f"highest x-delivery-count seen: {self.highest}")
        assert self.highest <= DELIVERY_LIMIT_SLACK


@asynccontextmanager
async def quorum_node(tmp_path: Path) -> AsyncIterator[tuple[RabbitNode, Topology, str]]:
    """A node (server + 2 worker slots) on 3 quorum bands with MAX_ATTEMPTS=1."""
    instance = f"w{uuid.uuid4().hex[:6]}"
    async with prefix_for_test("qa", **QUORUM) as prefix:
        settings = make_settings(
            prefix, tmp_path, instance, max_concurrent_jobs=2, max_attempts=1, **QUORUM
        )
        topo = Topology.from_settings(settings)
        async with started(build_node(settings, FakeMetrics(), FakeExecutor())) as node:
            await eventually(lambda: waiting(topo, 2), timeout=15, what="idle slots")
            yield node, topo, names.WORKER_CONNECTION_PREFIX + instance


async def waiting(topo: Topology, slots: int) -> bool:
    """Every band has one consumer per waiting slot (band_slots.py)."""
    return all([(await queue_info(q)).get("consumers") == slots for q in topo.job_queues()])


async def finished(node: RabbitNode, job_id: str) -> JobRecord:
    async def ended() -> JobRecord | None:
        record = await node.get(job_id)
        done = (JobState.COMPLETED, JobState.FAILED)
        return record if record is not None and record.state in done else None

    return await eventually(ended, timeout=30, what=f"job {job_id} finished")


async def burst(node: RabbitNode) -> list[JobRecord]:
    jobs = [job(priority=p) for p in PRIORITIES]
    for j in jobs:
        await node.submit(j)
    return [await finished(node, j.id) for j in jobs]


def assert_all_ran_once(records: list[JobRecord]) -> None:
    assert [r.state for r in records] == [JobState.COMPLETED] * len(records), [
        (r.state.value, r.failure) for r in records
    ]
    assert [r.attempt for r in records] == [1] * len(records)


async def assert_no_attempt_lost(
    node: RabbitNode, topo: Topology, records: list[JobRecord]
) -> None:
    """Every job ran once as attempt 1, none dead-lettered, and the slots are back waiting."""
    assert_all_ran_once(records)
    assert await node.dead_letters() == []
    await eventually(lambda: waiting(topo, 2), timeout=15, what="idle slots after")


async def test_bursts_over_three_bands_never_cost_an_attempt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """60 jobs in mixed-priority bursts on 2 slots over 3 bands: waiting slots cancel their
    consumers after each first delivery, and the broker counts the returns of the deliveries
    in flight to them. Before runs-started counting, 8 of 60 were dead-lettered
    (`delivery_limit`) without ever running; now all run, once, as attempt 1."""
    returns = Returns(monkeypatch)
    async with quorum_node(tmp_path) as (node, topo, _):
        records: list[JobRecord] = []
        for round_ in range(15):
            await asyncio.sleep(0.2 + 0.3 * (round_ % 3))  # slots back to waiting, or not
            records += await burst(node)
        await assert_no_attempt_lost(node, topo, records)
    returns.check()


async def test_connection_blips_never_cost_an_attempt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker's connection closed by the broker before each of 6 bursts: deliveries it
    held (prefetched to waiting slots) are returned and counted by the broker, never run.
    With MAX_ATTEMPTS=1 nothing is dead-lettered and every job runs as attempt 1."""
    returns = Returns(monkeypatch)
    async with quorum_node(tmp_path) as (node, topo, worker):
        records: list[JobRecord] = []
        for round_ in range(6):
            await eventually(lambda: close_connections(worker), timeout=15, what=worker)
            await asyncio.sleep(0.3 + 0.4 * (round_ % 3))  # submitted while it reconnects
            records += await burst(node)
        await assert_no_attempt_lost(node, topo, records)
    returns.check()
