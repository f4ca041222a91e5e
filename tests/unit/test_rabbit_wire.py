"""The AMQP wire format's versioning (docs/rabbitmq.md, "Wire format and upgrades"): every
message carries the version; a newer minor version's extra fields are read; a newer major
version is never dropped (a worker hands the job back, a server leaves the event)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, cast

import pytest
from aio_pika.abc import AbstractRobustConnection
from pydantic import ValidationError

from ffpool import names
from ffpool.backends.rabbitmq import attempts, connection, control, wire
from ffpool.backends.rabbitmq.feed import parse_events
from ffpool.backends.rabbitmq.publisher import Properties, Publisher
from ffpool.domain import protocol
from ffpool.domain.events import CompletedEvent, JobState, StateEvent
from ffpool.domain.jobs import (
    Chunking,
    ChunkTask,
    Job,
    JobSpec,
    LadderOp,
    PathInput,
    ProbeOp,
    TranscodeOp,
    chunk_job_id,
)
from ffpool.topology import Topology
from tests.fakes import (
    FakeConnection,
    FakeDelivery,
    FakeExecutor,
    FakePublisher,
    events_feed,
    worker_pool,
)
from tests.polling import eventually

JOB = "c" * 32


def newer_minor(model: dict[str, Any]) -> bytes:
    """A body as a later minor version writes it: a field this release does not know, at the
    top and nested."""
    return json.dumps({**model, "added_later": {"x": 1}}).encode()


def test_the_version_header_is_read_leniently() -> None:
    assert wire.version_of(None) == (1, 0)  # releases before versioning
    assert wire.version_of({names.HEADER_WIRE: "1.7"}) == (1, 7)
    assert wire.version_of({names.HEADER_WIRE: b"2.0"}) == (2, 0)  # AMQP strings may be bytes
    assert wire.version_of({names.HEADER_WIRE: "garbage"}) == (1, 0)
    assert wire.readable({names.HEADER_WIRE: f"{wire.MAJOR}.{wire.MINOR + 5}"})
    assert not wire.readable({names.HEADER_WIRE: f"{wire.MAJOR + 1}.0"})


def test_an_event_with_a_newer_minor_field_is_read_single_and_batched() -> None:
    done = CompletedEvent(job_id=JOB, processing_time_s=1.5)
    body = json.loads(done.model_dump_json())
    body["outputs"] = [
        {
            "name": "o.mp4",
            "size": 1,
            "content_type": "video/mp4",
            "url": "u",
            "checksum": "new in a later minor",
        }
    ]
    single = parse_events(newer_minor(body))
    assert single is not None
    assert single[0].type == "completed"
    batch = parse_events(b"[" + newer_minor(body) + b"," + newer_minor(body) + b"]")
    assert batch is not None
    assert len(batch) == 2
    assert parse_events(json.dumps({**body, "processing_time_s": "soon"}).encode()) is None


def test_a_job_and_control_messages_with_newer_minor_fields_are_read() -> None:
    job = Job(spec=JobSpec(input=PathInput(path="in.mp4"), operation=ProbeOp()))
    body = json.loads(job.model_dump_json())
    body["spec"]["operation"]["hwaccel"] = "new in a later minor"
    parsed = attempts.parse_job(newer_minor(body))
    assert parsed is not None
    assert parsed.id == job.id
    cancel = control.parse(newer_minor({"type": "cancel", "job_id": JOB}))
    assert cancel == control.CancelCommand(job_id=JOB)


def test_dead_letters_of_a_newer_major_are_not_read_as_records() -> None:
    job = Job(spec=JobSpec(input=PathInput(path="in.mp4"), operation=ProbeOp()))
    body = job.model_dump_json().encode()
    newer = {names.HEADER_WIRE: f"{wire.MAJOR + 1}.0"}
    found = attempts.dead_letter_records([(body, newer), (body, wire.headers())], None)
    assert [r.job_id for r in found] == [job.id]


def test_the_client_protocol_stays_strict() -> None:
    """Lenient parsing is for AMQP bodies between ffpool processes only: a client's typo is
    still refused, not silently ignored."""
    spec = {"input": {"kind": "path", "path": "in.mp4"}, "operation": {"op": "probe"}}
    submit = {"type": "submit", "job": spec, "priorty": 5}
    with pytest.raises(protocol.ProtocolError, match="priorty"):
        protocol.parse_client_message(json.dumps(submit), 65536)
    with pytest.raises(ValidationError, match="added_later"):
        Job.model_validate_json(
            newer_minor(
                json.loads(
                    Job(
                        spec=JobSpec(input=PathInput(path="a.mp4"), operation=ProbeOp())
                    ).model_dump_json()
                )
            )
        )


class RecordingChannel:
    """A channel whose underlying aiormq channel records what is published on it."""

    def __init__(self, sent: list[Properties]) -> None:
        self.sent = sent

    async def get_underlay_channel(self) -> RecordingChannel:
        return self

    async def basic_publish(self, body: bytes, *, properties: Properties, **_: Any) -> None:
        self.sent.append(properties)


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch) -> list[Properties]:
    """What every publisher started in the test sends, through its real publish path (the
    broker connection swapped at `connection`'s functions)."""
    sent: list[Properties] = []

    async def nothing(*_: Any, **__: Any) -> None:
        return None

    async def channel(*_: Any, **__: Any) -> RecordingChannel:
        return RecordingChannel(sent)

    monkeypatch.setattr(connection, "connect", nothing)
    monkeypatch.setattr(connection, "open_channel", channel)
    monkeypatch.setattr(connection, "declare_topology", nothing)
    monkeypatch.setattr(connection, "ensure_ready", nothing)
    return sent


async def test_every_published_message_carries_the_wire_version(
    recording: list[Properties],
) -> None:
    publisher = Publisher("amqp://unused", "test", Topology(), 1.0)
    await publisher.start()
    job = Job(spec=JobSpec(input=PathInput(path="in.mp4"), operation=ProbeOp()))
    event = StateEvent(job_id=JOB, state=JobState.QUEUED, operation="probe")
    await publisher.publish_job(job, 1)
    await publisher.publish_dead_letter(b"{}", {names.HEADER_ATTEMPT: 3})
    await publisher.publish_event(event, confirm=True)
    await publisher.publish_event(event, confirm=False)
    await publisher.publish_events([event])
    await publisher.publish_control(control.CancelCommand(job_id=JOB), "cancel")
    await publisher.reply("q", control.CancelCommand(job_id=JOB))
    assert len(recording) == 7
    assert all((p.headers or {}).get(names.HEADER_WIRE) == wire.VERSION for p in recording)


class HandBackPublisher(FakePublisher):
    def __init__(self) -> None:
        super().__init__()
        self.unread: list[tuple[bytes, dict[str, Any], int | None]] = []

    async def republish_unread(
        self, body: bytes, headers: dict[str, Any], priority: int | None, message_id: str | None
    ) -> None:
        self.unread.append((body, headers, priority))


async def test_a_worker_hands_a_newer_major_job_back_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not run, not dead-lettered, not nacked (a redelivery would cost it an attempt at the
    newer worker): republished as it came, then acked."""
    monkeypatch.setattr("ffpool.backends.rabbitmq.unread.DELAY_S", 0.01)
    publisher, executor = HandBackPublisher(), FakeExecutor(hold=True)
    workers = worker_pool(tmp_path, publisher, executor)
    conn = FakeConnection()
    await workers.start(cast(AbstractRobustConnection, conn), 1)
    message = FakeDelivery(Job(spec=JobSpec(input=PathInput(path="in.mp4"), operation=ProbeOp())))
    message.body = b'{"v2": "a body only a newer release reads"}'
    message.headers = {names.HEADER_WIRE: f"{wire.MAJOR + 1}.0", names.HEADER_ATTEMPT: 2}
    message.priority = 4
    await conn.consumer("")(message)
    await eventually(lambda: message.settled == ["ack"], timeout=5, what="the hand-back")
    assert executor.started == []
    assert publisher.unread == [(message.body, message.headers, 4)]


class EventMessage:
    def __init__(self, body: bytes, wire_version: str) -> None:
        self.body = body
        self.headers = {names.HEADER_WIRE: wire_version}
        self.routing_key = "batch"


async def test_a_server_reads_newer_minor_events_and_leaves_newer_major_ones() -> None:
    topo = Topology()
    feed = events_feed(100, topo)
    conn = FakeConnection()
    await feed.start(cast(AbstractRobustConnection, conn))
    on_event = conn.consumer(f"{topo.events_exchange}:s:")
    running = json.loads(
        StateEvent(job_id=JOB, state=JobState.RUNNING, operation="probe").model_dump_json()
    )
    await on_event(EventMessage(newer_minor(running), f"{wire.MAJOR}.{wire.MINOR + 1}"))
    record = feed.cache.get(JOB)
    assert record is not None
    assert record.state is JobState.RUNNING
    done = CompletedEvent(job_id=JOB, processing_time_s=1.0).model_dump_json().encode()
    await on_event(EventMessage(done, f"{wire.MAJOR + 1}.0"))
    record = feed.cache.get(JOB)
    # Left for the job's files: the resync reads the outcome (feed.py resync_forever).
    assert record is not None
    assert record.state is JobState.RUNNING
    await feed.stop()
    await asyncio.sleep(0)


def newer_feature_jobs() -> list[Job]:
    """Jobs a 1.x worker would run wrongly: a chunk (it would transcode the whole input), a
    ladder and a chunked transcode (it cannot parse them)."""
    spec = JobSpec(input=PathInput(path="in.mp4"), operation=TranscodeOp())
    parent = Job(spec=spec)
    chunk = ChunkTask(parent=parent.id, index=0, count=2, start_s=0.0, duration_s=3.0)
    return [
        Job(id=chunk_job_id(parent.id, 0), spec=spec, chunk=chunk),
        Job(spec=JobSpec(input=PathInput(path="in.mp4"), operation=LadderOp())),
        Job(
            spec=JobSpec(input=PathInput(path="in.mp4"), operation=TranscodeOp(chunking=Chunking()))
        ),
    ]


async def test_jobs_older_workers_would_run_wrongly_carry_the_newer_major(
    recording: list[Properties], monkeypatch: pytest.MonkeyPatch
) -> None:
    publisher = Publisher("amqp://unused", "test", Topology(), 1.0)
    await publisher.start()
    plain = Job(spec=JobSpec(input=PathInput(path="in.mp4"), operation=TranscodeOp()))
    for job in [plain, *newer_feature_jobs()]:
        await publisher.publish_job(job, 1)
    await publisher.publish_chunk_events(
        JOB, [CompletedEvent(job_id=JOB, processing_time_s=1)], confirm=True
    )
    versions = [(p.headers or {}).get(names.HEADER_WIRE) for p in recording]
    assert versions == [wire.VERSION, wire.NEWER, wire.NEWER, wire.NEWER, wire.NEWER]
    assert wire.NEWER == "2.0"
    assert wire.VERSION == "1.1"  # what 1.x releases read: unchanged for everything else
    assert all(wire.readable(p.headers) for p in recording)
    monkeypatch.setattr(wire, "MAJOR", 1)  # a 1.x reader
    assert [wire.readable(p.headers) for p in recording] == [True, False, False, False, False]


async def test_an_older_worker_hands_a_chunk_job_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 1.x worker (simulated: wire.MAJOR 1) does not run a chunk job published by this
    release: it republishes it unchanged for a newer worker."""
    monkeypatch.setattr("ffpool.backends.rabbitmq.unread.DELAY_S", 0.01)
    monkeypatch.setattr(wire, "MAJOR", 1)
    publisher, executor = HandBackPublisher(), FakeExecutor()
    workers = worker_pool(tmp_path, publisher, executor)
    conn = FakeConnection()
    await workers.start(cast(AbstractRobustConnection, conn), 1)
    chunk = newer_feature_jobs()[0]
    message = FakeDelivery(chunk)
    message.headers = {**wire.job_headers(chunk), names.HEADER_ATTEMPT: 1}
    await conn.consumer("")(message)
    await eventually(lambda: message.settled == ["ack"], timeout=5, what="the hand-back")
    assert executor.started == []
    assert [headers for _, headers, _ in publisher.unread] == [message.headers]
