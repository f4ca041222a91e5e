"""The RabbitMQ backend in-process against the real broker, with a fake executor.

Each test gets its own exchanges and queues (deleted afterwards) and counts its jobs in and out.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from ffpool import names
from ffpool.backends.base import BackendUnavailable, QueueFull
from ffpool.backends.rabbitmq import build_node, build_server, build_worker
from ffpool.domain.events import FailureCode, JobState
from ffpool.settings import Settings
from tests.fakes import FakeExecutor, FakeMetrics
from tests.integration.rabbit_harness import (
    job,
    make_settings,
    need_broker,
    prefix_for_test,
    raw_channel,
    started,
    state_of,
    until_state,
)
from tests.polling import eventually

pytestmark = pytest.mark.rabbitmq
MANAGEMENT_URL = "http://127.0.0.1:15672"


@pytest.fixture(autouse=True)
def _broker() -> None:
    need_broker()


async def test_jobs_flow_with_confirms_and_events(tmp_path: Path) -> None:
    async with prefix_for_test() as prefix:
        settings = make_settings(prefix, tmp_path, "serve1")
        metrics, executor = FakeMetrics(), FakeExecutor()
        async with started(build_node(settings, metrics, executor)) as backend:
            jobs = [job("ok") for _ in range(10)]
            seen = []
            async with backend.subscribe(jobs[0].id) as sub:
                for j in jobs:
                    submission = await backend.submit(j)
                    # A fast worker's outcome may reach the server before submit returns: the
                    # record is then the outcome's, completed with the job's own fields.
                    assert submission.record.state in (JobState.QUEUED, JobState.COMPLETED)
                    assert submission.record.operation == j.spec.operation.op
                    assert not submission.duplicate
                async for event in sub:
                    seen.append(event.type)
            assert seen[-1] == "completed"
            assert "progress" in seen
            for j in jobs:
                await until_state(backend, j.id, JobState.COMPLETED)
            assert (await backend.submit(jobs[0])).duplicate
            assert metrics.submitted == 10
            assert sorted(executor.started) == sorted(j.id for j in jobs)
            stats = await backend.stats()
            assert stats.backend == "RabbitMQ"
            assert stats.queued_jobs == 0
            assert stats.total_jobs == 10


async def test_one_consumer_per_slot_and_a_named_worker_connection(tmp_path: Path) -> None:
    async with prefix_for_test() as prefix:
        settings = make_settings(prefix, tmp_path, "podname-1", max_concurrent_jobs=4)
        async with started(build_node(settings, FakeMetrics(), FakeExecutor())):
            conn, channel = await raw_channel()
            async with conn:
                declared = await channel.declare_queue(settings.job_queue, passive=True)
                assert declared.declaration_result.consumer_count == 4
            wanted = names.WORKER_CONNECTION_PREFIX + "podname-1"
            found = await eventually(
                lambda: _connection_names(wanted), timeout=15, what="the connection"
            )
            assert wanted in found


async def _connection_names(wanted: str) -> set[str]:
    """Connection names the management API lists (it lags a little), once `wanted` is in."""
    headers = {"Authorization": aiohttp.encode_basic_auth("guest", "guest")}
    async with (
        aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(5)) as http,
        http.get(MANAGEMENT_URL + "/api/connections") as resp,
    ):
        listed = await resp.json()
    found = {str(c.get("client_properties", {}).get("connection_name")) for c in listed}
    return found if wanted in found else set()


async def test_full_queue_is_refused(tmp_path: Path) -> None:
    async with prefix_for_test() as prefix:
        settings = make_settings(prefix, tmp_path, "server1", queue_max_length=2)
        async with started(build_server(settings, FakeMetrics())) as backend:
            await backend.submit(job())
            await backend.submit(job())
            with pytest.raises(QueueFull):
                await backend.submit(job())
            assert (await backend.stats()).queued_jobs == 2


async def test_unroutable_job_is_an_error(tmp_path: Path) -> None:
    async with prefix_for_test() as prefix:
        settings = make_settings(prefix, tmp_path, "server1")
        async with started(build_server(settings, FakeMetrics())) as backend:
            conn, channel = await raw_channel()
            async with conn:
                queue = await channel.get_queue(settings.job_queue, ensure=False)
                await queue.unbind(settings.job_exchange, routing_key=names.JOB_ROUTING_KEY)
            with pytest.raises(BackendUnavailable, match="no queue is bound"):
                await backend.submit(job())


async def test_deterministic_failure_goes_to_dlq_at_once(tmp_path: Path) -> None:
    async with prefix_for_test() as prefix:
        settings = make_settings(prefix, tmp_path, "serve1")
        executor = FakeExecutor()
        async with started(build_node(settings, FakeMetrics(), executor)) as backend:
            bad = job("fail")
            await backend.submit(bad)
            record = await until_state(backend, bad.id, JobState.FAILED)
            assert record.failure is not None
            assert record.failure.code is FailureCode.INVALID_MEDIA
            assert executor.started == [bad.id]
            dead = await eventually(backend.dead_letters, timeout=15, what="the DLQ entry")
            assert [r.job_id for r in dead] == [bad.id]
            assert dead[0].failure is not None
            assert dead[0].failure.code is FailureCode.INVALID_MEDIA
            assert len(await backend.dead_letters()) == 1  # peeking leaves it there


async def crash_once(queue_name: str) -> dict[str, object]:
    """A worker that takes a job and dies before acking (its connection drops)."""
    conn, channel = await raw_channel()
    queue = await channel.get_queue(queue_name, ensure=False)
    message = await eventually(
        lambda: queue.get(no_ack=False, fail=False), timeout=15, what="a delivery"
    )
    headers = dict(message.headers or {})
    await conn.close()
    return headers


async def test_crashed_delivery_is_retried_with_a_counted_attempt(tmp_path: Path) -> None:
    async with prefix_for_test() as prefix:
        server = make_settings(prefix, tmp_path, "server1")
        worker = make_settings(prefix, tmp_path, "worker1")
        executor = FakeExecutor()
        async with started(build_server(server, FakeMetrics())) as front:
            j = job("ok")
            await front.submit(j)
            assert (await crash_once(server.job_queue))[names.HEADER_ATTEMPT] == 1
            async with started(build_worker(worker, FakeMetrics(), executor)):
                record = await until_state(front, j.id, JobState.COMPLETED)
            assert record.attempt == 2
            assert executor.started == [j.id]


async def test_poison_job_dead_letters_after_max_attempts(tmp_path: Path) -> None:
    async with prefix_for_test() as prefix:
        server = make_settings(prefix, tmp_path, "server1", max_attempts=2)
        worker = make_settings(prefix, tmp_path, "worker1", max_attempts=2)
        executor = FakeExecutor()
        async with started(build_server(server, FakeMetrics())) as front:
            j = job("block")
            await front.submit(j)
            assert (await crash_once(server.job_queue))[names.HEADER_ATTEMPT] == 1
            # The first worker counts that crash: it republishes the job as attempt 2 (and
            # would run it, but this executor never gets to: the queue is empty after the
            # republish, so the test takes attempt 2 first and crashes it too).
            await _republish_as_next_attempt(server, worker, j.id)
            assert (await crash_once(server.job_queue))[names.HEADER_ATTEMPT] == 2
            async with started(build_worker(worker, FakeMetrics(), executor)):
                record = await until_state(front, j.id, JobState.FAILED)
            assert record.failure is not None
            assert record.failure.code is FailureCode.TOO_MANY_ATTEMPTS
            assert executor.started == []
            dead = await front.dead_letters()
            assert [(r.job_id, r.failure.code if r.failure else None) for r in dead] == [
                (j.id, FailureCode.TOO_MANY_ATTEMPTS)
            ]
            assert dead[0].attempt == 2


async def _republish_as_next_attempt(server: Settings, worker: Settings, job_id: str) -> None:
    """Run the worker's decision on the redelivered message without letting it run the job:
    a worker whose only slot is held by a blocked job decides, republishes, then is stopped."""
    executor = FakeExecutor()
    w = build_worker(worker.model_copy(update={"max_concurrent_jobs": 1}), FakeMetrics(), executor)
    async with started(w):
        # After the republish, the slot takes attempt 2 and runs it; the drain hands it back
        # with the attempt unchanged, exactly what the test needs to crash it once more.
        await eventually(lambda: _started(executor, job_id), timeout=15, what="attempt 2 running")
        await w.drain(0)


async def _started(executor: FakeExecutor, job_id: str) -> bool:
    return job_id in executor.started


async def test_drain_hands_running_jobs_back_never_to_the_dlq(tmp_path: Path) -> None:
    async with prefix_for_test() as prefix:
        server = make_settings(prefix, tmp_path, "server1")
        worker = make_settings(prefix, tmp_path, "worker1", max_concurrent_jobs=1)
        executor = FakeExecutor()
        async with started(build_server(server, FakeMetrics())) as front:
            j = job("block")
            await front.submit(j)
            w = build_worker(worker, FakeMetrics(), executor)
            async with started(w):
                await until_state(front, j.id, JobState.RUNNING)
                assert w.busy_jobs() == 1
                async with asyncio.timeout(10):
                    await w.drain(0.2)
                assert executor.cancelled == [j.id]
                assert w.busy_jobs() == 0
            await eventually(
                lambda: state_of(front, j.id, JobState.QUEUED), timeout=15, what="hand-back"
            )
            assert (await front.stats()).queued_jobs == 1
            assert await front.dead_letters() == []
            executor.release()
            async with started(build_worker(worker, FakeMetrics(), executor)):
                record = await until_state(front, j.id, JobState.COMPLETED)
            assert record.attempt == 1  # the hand-back did not count as an attempt


async def test_cancel_reaches_a_remote_worker(tmp_path: Path) -> None:
    async with prefix_for_test() as prefix:
        server = make_settings(prefix, tmp_path, "server1")
        worker = make_settings(prefix, tmp_path, "worker1")
        executor = FakeExecutor()
        async with (
            started(build_server(server, FakeMetrics())) as front,
            started(build_worker(worker, FakeMetrics(), executor)),
        ):
            j = job("block")
            await front.submit(j)
            await until_state(front, j.id, JobState.RUNNING)
            await front.cancel(j.id)
            record = await until_state(front, j.id, JobState.CANCELLED)
            assert executor.cancelled == [j.id]
            assert record.cancel is not None


async def test_cancel_of_a_queued_job_skips_it_later(tmp_path: Path) -> None:
    async with prefix_for_test() as prefix:
        server = make_settings(prefix, tmp_path, "server1")
        worker = make_settings(prefix, tmp_path, "worker1", max_concurrent_jobs=1)
        executor = FakeExecutor()
        async with (
            started(build_server(server, FakeMetrics())) as front,
            started(build_worker(worker, FakeMetrics(), executor)),
        ):
            busy, queued = job("block"), job("ok")
            await front.submit(busy)
            await until_state(front, busy.id, JobState.RUNNING)
            await front.submit(queued)
            assert (await front.cancel(queued.id)).state is JobState.CANCELLED
            executor.release()
            await until_state(front, busy.id, JobState.COMPLETED)
            # One slot, FIFO: once a later job has completed, the cancelled one was handled.
            later = job("ok")
            await front.submit(later)
            await until_state(front, later.id, JobState.COMPLETED)
            assert executor.started == [busy.id, later.id]  # the cancelled job never ran
            assert (await front.get(queued.id)).state is JobState.CANCELLED  # type: ignore[union-attr]


async def test_a_new_server_learns_jobs_from_the_others(tmp_path: Path) -> None:
    async with prefix_for_test() as prefix:
        executor = FakeExecutor()
        s1 = make_settings(prefix, tmp_path, "server1")
        s2 = make_settings(prefix, tmp_path, "server2")
        async with started(build_node(s1, FakeMetrics(), executor)) as first:
            done, running = job("ok"), job("block")
            await first.submit(done)
            await first.submit(running)
            await until_state(first, done.id, JobState.COMPLETED)
            await until_state(first, running.id, JobState.RUNNING)
            async with started(build_server(s2, FakeMetrics())) as second:
                # A client reconnecting to server2 subscribes: snapshot first, then events.
                async with second.subscribe(running.id) as sub:
                    record = await second.get(running.id)
                    assert record is not None
                    assert record.state is JobState.RUNNING
                    executor.release()
                    async with asyncio.timeout(10):
                        types = [event.type async for event in sub]
                assert types[-1] == "completed"
                assert (await second.get(done.id)).state is JobState.COMPLETED  # type: ignore[union-attr]
                assert await second.get("0" * 32) is None
