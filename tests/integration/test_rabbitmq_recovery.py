"""The RabbitMQ backend in-process: conflicting queue arguments, cancelled and completed jobs
seen by workers that never heard of them, and a slot that never runs two jobs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aio_pika
import pytest

from ffpool import names
from ffpool.backends.base import BackendUnavailable
from ffpool.backends.rabbitmq import build_node, build_server, build_worker, settler
from ffpool.domain.events import FailureCode, JobState
from tests.fakes import FakeExecutor, FakeMetrics
from tests.integration.rabbit_harness import (
    job,
    make_settings,
    need_broker,
    prefix_for_test,
    raw_channel,
    started,
    until_state,
)

pytestmark = pytest.mark.rabbitmq


@pytest.fixture(autouse=True)
def _broker() -> None:
    need_broker()


async def test_a_queue_with_other_arguments_is_used_as_it_is(tmp_path: Path) -> None:
    async with prefix_for_test() as prefix:
        settings = make_settings(prefix, tmp_path, "serve1", queue_max_length=50)
        conn, channel = await raw_channel()
        async with conn:
            # The operator's pool changed QUEUE_MAX_LENGTH: the queue exists with other args.
            await channel.declare_queue(
                settings.job_queue, durable=True, arguments={"x-max-length": 7}
            )
            await channel.declare_queue(
                settings.dlq_queue, durable=True, arguments={"x-max-length": 3}
            )
        executor = FakeExecutor()
        async with started(build_node(settings, FakeMetrics(), executor)) as backend:
            j = job("ok")
            await backend.submit(j)
            await until_state(backend, j.id, JobState.COMPLETED)
            assert executor.started == [j.id]


async def test_a_job_cancelled_while_queued_is_skipped_by_a_later_worker(tmp_path: Path) -> None:
    async with prefix_for_test() as prefix:
        server = make_settings(prefix, tmp_path, "server1")
        worker = make_settings(prefix, tmp_path, "worker1", max_concurrent_jobs=1)
        executor = FakeExecutor()
        async with started(build_server(server, FakeMetrics())) as front:
            cancelled = job("ok")
            await front.submit(cancelled)
            assert (await front.cancel(cancelled.id)).state is JobState.CANCELLED
            # This worker starts after the cancel broadcast: only the marker tells it.
            async with started(build_worker(worker, FakeMetrics(), executor)):
                later = job("ok")  # one slot, FIFO: once it completed, the first was handled
                await front.submit(later)
                await until_state(front, later.id, JobState.COMPLETED)
            assert executor.started == [later.id]
            assert (await front.get(cancelled.id)).state is JobState.CANCELLED  # type: ignore[union-attr]


async def _acked_but_not(deliveries: object, timeout: float) -> bool:
    """The worker is killed right after the outcome's confirm: the ack never leaves."""
    return True


async def test_a_completed_job_redelivered_after_a_crash_is_not_run_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with prefix_for_test() as prefix:
        worker = make_settings(prefix, tmp_path, "worker1", max_concurrent_jobs=1)
        first, second = FakeExecutor(), FakeExecutor()
        j = job("ok")
        async with started(
            build_server(make_settings(prefix, tmp_path, "server1"), FakeMetrics())
        ) as front:
            monkeypatch.setattr(settler, "ack_all", _acked_but_not)
            async with started(build_worker(worker, FakeMetrics(), first)):
                await front.submit(j)
                await until_state(front, j.id, JobState.COMPLETED)
            monkeypatch.undo()  # the worker "crashed": its unacked delivery is requeued
        # No server remembers the job now: only the marker can tell the next worker.
        server2 = make_settings(prefix, tmp_path, "server2")
        async with (
            started(build_server(server2, FakeMetrics())) as front2,
            started(build_worker(worker, FakeMetrics(), second)),
        ):
            later = job("ok")  # one slot, FIFO: once it completed, the copy was handled
            await front2.submit(later)
            await until_state(front2, later.id, JobState.COMPLETED)
        assert first.started == [j.id]
        assert second.started == [later.id]


async def test_expired_job_is_reported_not_lost(tmp_path: Path) -> None:
    async with prefix_for_test() as prefix:
        settings = make_settings(prefix, tmp_path, "server1", queue_message_ttl_ms=1000)
        async with started(build_server(settings, FakeMetrics())) as backend:
            j = job()
            await backend.submit(j)
            record = await until_state(backend, j.id, JobState.FAILED)
            assert record.failure is not None
            assert record.failure.code is FailureCode.EXPIRED
            dead = await backend.dead_letters()
            assert dead[0].failure is not None
            assert dead[0].failure.code is FailureCode.EXPIRED


async def test_broker_unreachable_is_a_clear_error(tmp_path: Path) -> None:
    settings = make_settings(
        "fftest.none", tmp_path, "s", rabbitmq_url="amqp://guest:guest@127.0.0.1:1/"
    )
    with pytest.raises(BackendUnavailable, match=r"guest:\*\*\*@"):
        await build_server(settings, FakeMetrics()).start()


async def test_a_duplicate_of_a_completed_job_is_not_run_again(tmp_path: Path) -> None:
    async with prefix_for_test() as prefix:
        server = make_settings(prefix, tmp_path, "server1")
        worker = make_settings(prefix, tmp_path, "worker1", max_concurrent_jobs=1)
        first, second = FakeExecutor(), FakeExecutor()
        async with started(build_server(server, FakeMetrics())) as front:
            j = job("ok")
            async with started(build_worker(worker, FakeMetrics(), first)):
                await front.submit(j)
                await until_state(front, j.id, JobState.COMPLETED)
            # The copy a broker redelivers after a crash between confirm and ack, taken by
            # another worker that never saw the job: it asks the servers and skips it.
            conn, channel = await raw_channel()
            async with conn:
                exchange = await channel.get_exchange(server.job_exchange, ensure=False)
                headers: dict[str, Any] = {
                    names.HEADER_ATTEMPT: 1,
                    names.HEADER_ORIGIN: "republished",
                }
                message = aio_pika.Message(j.model_dump_json().encode(), headers=headers)
                await exchange.publish(message, routing_key=names.JOB_ROUTING_KEY)
            async with started(build_worker(worker, FakeMetrics(), second)):
                later = job("ok")  # one slot, FIFO: once it completed, the copy was handled
                await front.submit(later)
                await until_state(front, later.id, JobState.COMPLETED)
            assert first.started == [j.id]
            assert second.started == [later.id]
