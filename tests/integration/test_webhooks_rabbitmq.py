"""Webhooks with the RabbitMQ backend: deliveries are durable messages, so a server that
stops with deliveries pending (its receiver down) leaves them to the next one, and every
event still arrives, in order per job, duplicates only under the same id."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aio_pika
import pytest

from ffpool.auth.tenants import TenantsFile
from ffpool.backends.rabbitmq import build_node, build_server
from ffpool.domain.events import JobState
from ffpool.domain.jobs import Job, JobSpec, PathInput, ProbeOp
from ffpool.settings import Settings
from ffpool.webhooks import signing
from ffpool.webhooks.dispatcher import Dispatcher
from ffpool.webhooks.notifier import WebhookNotifier
from ffpool.webhooks.rabbit import RabbitQueue
from ffpool.webhooks.schedule import Backoff
from ffpool.webhooks.secret_store import Secrets
from ffpool.webhooks.sender import Sender
from tests.fakes import FakeExecutor, FakeMetrics
from tests.integration.rabbit_harness import (
    AMQP_URL,
    make_settings,
    need_broker,
    prefix_for_test,
    started,
    until_state,
)
from tests.integration.webhook_receiver import Receiver
from tests.polling import eventually


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    need_broker()
    async with prefix_for_test() as name:
        yield name
        await _delete_queues(name)


async def _delete_queues(prefix: str) -> None:
    conn = await aio_pika.connect(AMQP_URL, timeout=5)
    async with conn:
        channel = await conn.channel()
        for queue in (f"{prefix}.webhooks", f"{prefix}.webhooks.dlq"):
            await channel.queue_delete(queue, timeout=5)


@asynccontextmanager
async def webhooks(settings: Settings, prefix: str) -> AsyncIterator[RabbitQueue]:
    """One server process's webhooks: the queue (publish and consume) and its dispatcher."""
    assert settings.webhook_secret_file is not None
    secrets = Secrets({}, settings.webhook_secret_file.read_text().strip())
    queue = RabbitQueue(settings, queue=f"{prefix}.webhooks", dlq=f"{prefix}.webhooks.dlq")
    sender = Sender(settings, secrets)
    queue.dispatcher = Dispatcher(
        settings, sender, queue.settle, backoff=Backoff(first_s=0.05, cap_s=0.3)
    )
    await queue.start()
    try:
        yield queue
    finally:
        await queue.stop()
        await sender.close()


def _job(mode: str, callback: str) -> Job:
    spec = JobSpec(input=PathInput(path=mode), operation=ProbeOp(), callback=callback)
    return Job(spec=spec)


async def test_deliveries_survive_a_server_restart(prefix: str, tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(signing.new_secret())
    receiver = Receiver(secret_file.read_text())
    await receiver.start()
    await receiver.stop()  # it has its port; it is down until the end
    settings = make_settings(
        prefix,
        tmp_path,
        "wh-a",
        webhook_secret_file=secret_file,
        webhook_allow_private=True,
    )
    jobs = [_job(mode, receiver.url) for mode in ("ok", "fail", "ok")]
    async with webhooks(settings, prefix) as first:
        notifier = WebhookNotifier(settings, TenantsFile(), first.put)
        node = build_node(settings, FakeMetrics(), FakeExecutor(), notifier=notifier)
        async with started(node):
            for job in jobs:
                await node.submit(job)
            for job, state in zip(
                jobs, (JobState.COMPLETED, JobState.FAILED, JobState.COMPLETED), strict=True
            ):
                await until_state(node, job.id, state)
        assert first.dispatcher is not None
        assert first.dispatcher.pending > 0
    # The first server is gone with its deliveries unsent; a second one takes them over.
    second_settings = settings.model_copy(update={"instance_name": "wh-b"})
    async with webhooks(second_settings, prefix):
        await receiver.start()
        try:
            await eventually(
                lambda: len(receiver.received) == 9, timeout=30, what="every job's three events"
            )
        finally:
            await receiver.stop()
    expected = {
        jobs[0].id: ["job.queued", "job.running", "job.completed"],
        jobs[1].id: ["job.queued", "job.running", "job.failed"],
        jobs[2].id: ["job.queued", "job.running", "job.completed"],
    }
    assert {job.id: receiver.types(job.id) for job in jobs} == expected
    assert receiver.bad == []
    # Any duplicate came with the id of the delivery it repeats (counted, not recorded twice).
    assert len(receiver.copies) == 9


async def test_a_cancelled_queued_job_is_notified_once(prefix: str, tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(signing.new_secret())
    receiver = Receiver(secret_file.read_text())
    await receiver.start()
    settings = make_settings(
        prefix,
        tmp_path,
        "wh-c",
        max_concurrent_jobs=1,
        webhook_secret_file=secret_file,
        webhook_allow_private=True,
    )
    executor = FakeExecutor()
    blocking, waiting = _job("block", receiver.url), _job("ok", receiver.url)
    try:
        async with webhooks(settings, prefix) as hooks:
            notifier = WebhookNotifier(settings, TenantsFile(), hooks.put)
            node = build_node(settings, FakeMetrics(), executor, notifier=notifier)
            async with started(node):
                await node.submit(blocking)
                await until_state(node, blocking.id, JobState.RUNNING)
                await node.submit(waiting)
                await node.cancel(waiting.id)
                executor.release()
                await until_state(node, blocking.id, JobState.COMPLETED)
                # The worker dequeues the cancelled job, skips it, and records its end again:
                # the same webhook id, so the receiver counts no second cancelled event.
                await eventually(
                    lambda: len(receiver.received) == 5, timeout=15, what="five events"
                )
                await eventually(
                    lambda: hooks.dispatcher is not None and hooks.dispatcher.pending == 0,
                    timeout=15,
                    what="nothing left to send",
                )
    finally:
        await receiver.stop()
    assert receiver.types(waiting.id) == ["job.queued", "job.cancelled"]
    assert receiver.types(blocking.id) == ["job.queued", "job.running", "job.completed"]
    assert receiver.bad == []
    assert receiver.duplicates == 0


async def test_a_job_expired_in_the_queue_is_notified_failed(prefix: str, tmp_path: Path) -> None:
    """No worker ever sees it: the accepting server sends its `failed` (from the DLQ watch)."""
    secret_file = tmp_path / "secret"
    secret_file.write_text(signing.new_secret())
    receiver = Receiver(secret_file.read_text())
    await receiver.start()
    settings = make_settings(
        prefix,
        tmp_path,
        "wh-e",
        queue_message_ttl_ms=1000,
        webhook_secret_file=secret_file,
        webhook_allow_private=True,
    )
    expiring = _job("ok", receiver.url)
    try:
        async with webhooks(settings, prefix) as hooks:
            notifier = WebhookNotifier(settings, TenantsFile(), hooks.put)
            async with started(build_server(settings, FakeMetrics(), notifier=notifier)) as srv:
                await srv.submit(expiring)
                await until_state(srv, expiring.id, JobState.FAILED)
                await eventually(lambda: len(receiver.received) == 2, timeout=15, what="two events")
    finally:
        await receiver.stop()
    assert receiver.types(expiring.id) == ["job.queued", "job.failed"]
    assert receiver.received[-1].body["data"]["code"] == "expired"
