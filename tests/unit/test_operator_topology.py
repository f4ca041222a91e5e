import base64

import pytest

from ffpool.topology import Topology
from ffpool_operator.broker import management, topology
from ffpool_operator.decisions.broker_model import QueueInfo
from ffpool_operator.spec import credentials
from ffpool_operator.spec.pool import RabbitMQSpec
from tests.operator_harness.memory_broker import InMemoryBroker
from tests.operator_harness.samples import POOL, spec

VH = "/"


async def test_declares_everything_then_is_idempotent() -> None:
    broker = InMemoryBroker()
    plan = topology.plan(POOL, spec().topology)
    report = await topology.ensure(broker, VH, plan)
    assert report.ready
    assert "queue ffmpeg_job_queue" in report.created
    assert broker.queues[VH, "ffmpeg_job_queue"].arguments == Topology().queue_arguments()
    keys = {(b.queue, b.routing_key) for _, b in broker.bound}
    assert keys == {("ffmpeg_job_queue", "ffmpeg_job"), ("ffmpeg_job_dlq", "ffmpeg_job_dlq")}
    policy = broker.policies[VH, "ffpool.media.demo"]
    assert policy.pattern == "^ffmpeg_job_queue$"
    assert policy.definition["message-ttl"] == 3_600_000
    again = await topology.ensure(broker, VH, plan)
    assert again.ready
    assert again.created == []


async def test_conflicting_arguments_are_reported_not_redeclared() -> None:
    broker = InMemoryBroker()
    await topology.ensure(broker, VH, topology.plan(POOL, spec().topology))
    changed = topology.plan(POOL, spec(topology={"maxPriority": 3}).topology)
    report = await topology.ensure(broker, VH, changed)
    assert not report.ready
    assert report.conflicts == ["ffmpeg_job_queue x-max-priority: queue has 9, spec wants 3"]


async def test_drift_is_repaired() -> None:
    broker = InMemoryBroker()
    plan = topology.plan(POOL, spec().topology)
    await topology.ensure(broker, VH, plan)
    del broker.queues[VH, "ffmpeg_job_queue"]
    broker.bound.clear()
    report = await topology.ensure(broker, VH, plan)
    assert (VH, "ffmpeg_job_queue") in broker.queues
    assert len(report.created) == 3


def test_path_segments_are_fully_encoded() -> None:
    assert management.segment("/") == "%2F"
    assert management.segment("a/b c%") == "a%2Fb%20c%25"


def _secret(**data: str) -> dict[str, object]:
    return {"data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def test_credentials_from_secret() -> None:
    rmq = RabbitMQSpec(secret_name="rmq")
    secret = _secret(**{"management-url": "http://h:15672", "username": "u", "password": "p@ss:/"})
    creds = credentials.from_secret(secret, rmq)
    assert creds.password.get_secret_value() == "p@ss:/"
    assert "p@ss" not in repr(creds)
    with pytest.raises(credentials.MissingSecret, match="password"):
        credentials.from_secret(_secret(**{"management-url": "x", "username": "u"}), rmq)
    with pytest.raises(credentials.MissingSecret, match="not found"):
        credentials.from_secret(None, rmq)


def test_delete_if_empty_counts_in_flight_jobs_and_consumers() -> None:
    q = QueueInfo(name="q")
    assert topology.in_use(q) is None
    assert topology.in_use(q.model_copy(update={"messages_unacknowledged": 2})) == ("2 in flight")
    busy = q.model_copy(update={"messages_ready": 1, "consumers": 3})
    assert topology.in_use(busy) == "1 ready, 3 consumers"


async def test_in_memory_broker_deletes_like_rabbitmq_if_empty() -> None:
    """The stand-in must not be kinder than RabbitMQ: `if-empty` ignores unacked messages."""
    broker = InMemoryBroker()
    await broker.declare_queue(VH, "q", {})
    broker.set_depth(VH, "q", ready=0, unacked=3)
    await broker.delete_queue(VH, "q")
    assert (VH, "q") not in broker.queues
