"""With QUEUE_TYPE=quorum the webhook queues are declared as quorum queues (single active
consumer and dead-lettering work on them); an existing classic webhook queue is used as it
is, never a reason to fail (docs/rabbitmq.md, "Broker clusters")."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import aiormq
import pytest

from ffpool.webhooks.rabbit import RabbitQueue, queue_arguments
from tests.integration.rabbit_harness import AMQP_URL, make_settings, need_broker

pytestmark = pytest.mark.rabbitmq


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    need_broker()
    name = f"fftest.whq.{uuid.uuid4().hex[:8]}"
    yield name
    conn = await aio_pika.connect(AMQP_URL, timeout=5)
    async with conn:
        channel = await conn.channel()
        for queue in (f"{name}.webhooks", f"{name}.webhooks.dlq"):
            await channel.queue_delete(queue, timeout=5)


async def is_quorum(queue: str, arguments: dict[str, Any]) -> bool:
    """Whether `queue` is a quorum queue: redeclaring it as one is equivalent only then."""
    conn = await aio_pika.connect(AMQP_URL, timeout=5)
    async with conn:
        channel = await conn.channel()
        try:
            await channel.declare_queue(
                queue, durable=True, arguments={**arguments, "x-queue-type": "quorum"}, timeout=5
            )
        except aiormq.exceptions.ChannelPreconditionFailed:
            return False
    return True


async def test_quorum_mode_declares_quorum_webhook_queues(prefix: str, tmp_path: Path) -> None:
    settings = make_settings(prefix, tmp_path, "whq", queue_type="quorum")
    queue, dlq = f"{prefix}.webhooks", f"{prefix}.webhooks.dlq"
    rabbit = RabbitQueue(settings, queue=queue, dlq=dlq)
    await rabbit.start()
    await rabbit.stop()
    assert await is_quorum(queue, queue_arguments(dlq))
    assert await is_quorum(dlq, {})


async def test_an_existing_classic_webhook_queue_is_used_as_it_is(
    prefix: str, tmp_path: Path
) -> None:
    queue, dlq = f"{prefix}.webhooks", f"{prefix}.webhooks.dlq"
    classic = make_settings(prefix, tmp_path, "whq-classic")
    rabbit = RabbitQueue(classic, queue=queue, dlq=dlq)
    await rabbit.start()
    await rabbit.stop()
    # The pool switches to quorum: the webhook queue keeps its type, the process starts.
    rabbit = RabbitQueue(
        make_settings(prefix, tmp_path, "whq", queue_type="quorum"), queue=queue, dlq=dlq
    )
    await rabbit.start()
    await rabbit.stop()
    assert not await is_quorum(queue, queue_arguments(dlq))
