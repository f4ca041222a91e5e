"""Batched publishing on the dispatch path: the worker's event outbox, one socket write per
loop turn, and servers reading a single event or a batch."""

from __future__ import annotations

import asyncio

import pytest

from ffpool.backends.base import BackendUnavailable
from ffpool.backends.rabbitmq import outbox as outbox_module
from ffpool.backends.rabbitmq.feed import parse_events
from ffpool.backends.rabbitmq.outbox import Outbox
from ffpool.backends.rabbitmq.publisher import Publisher
from ffpool.backends.rabbitmq.transport import CoalescingWriter
from ffpool.domain.events import CompletedEvent, JobEvent, ProgressEvent
from ffpool.topology import Topology


def done(n: int) -> CompletedEvent:
    return CompletedEvent(job_id=f"{n:032x}", processing_time_s=0.0)


class Broker:
    """Stands in for the confirmed publish: records batches, confirms when told."""

    def __init__(self) -> None:
        self.batches: list[list[JobEvent]] = []
        self.confirm = asyncio.Event()
        self.fail: Exception | None = None

    async def publish(self, events: list[JobEvent]) -> None:
        self.batches.append(events)
        await self.confirm.wait()
        if self.fail is not None:
            raise self.fail


async def test_one_turns_events_go_out_as_one_message_in_order() -> None:
    broker = Broker()
    box = Outbox(broker.publish)
    puts = [asyncio.create_task(box.put(done(i))) for i in range(5)]
    await asyncio.sleep(0)  # the puts run; the flusher starts on the next turn
    await asyncio.sleep(0)
    assert [[e.job_id for e in b] for b in broker.batches] == [[done(i).job_id for i in range(5)]]
    assert not any(p.done() for p in puts), "put returns only after the confirm"
    broker.confirm.set()
    await asyncio.gather(*puts)


async def test_events_put_while_a_batch_is_in_flight_follow_it() -> None:
    broker = Broker()
    box = Outbox(broker.publish)
    first = asyncio.create_task(box.put(done(0)))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    later = [asyncio.create_task(box.put(done(i))) for i in (1, 2)]
    await asyncio.sleep(0)
    assert len(broker.batches) == 1, "one batch in flight at most"
    broker.confirm.set()
    await asyncio.gather(first, *later)
    assert [[e.job_id for e in b] for b in broker.batches] == [
        [done(0).job_id],
        [done(1).job_id, done(2).job_id],
    ]


async def test_a_failed_publish_fails_every_put_of_its_batch() -> None:
    broker = Broker()
    broker.fail = BackendUnavailable("down")
    broker.confirm.set()
    box = Outbox(broker.publish)
    results = await asyncio.gather(box.put(done(0)), box.put(done(1)), return_exceptions=True)
    assert all(isinstance(r, BackendUnavailable) for r in results)


async def test_a_lost_connections_cancelled_confirm_fails_the_batch_not_the_outbox() -> None:
    """aiormq fails pending confirms with CancelledError when heartbeats find the connection
    stuck: the slots waiting on that batch get BackendUnavailable (and retry), never a hang."""
    broker = Broker()
    broker.fail = asyncio.CancelledError()
    broker.confirm.set()
    box = Outbox(broker.publish)
    results = await asyncio.wait_for(
        asyncio.gather(box.put(done(0)), box.put(done(1)), return_exceptions=True), 5
    )
    assert all(isinstance(r, BackendUnavailable) for r in results), results
    assert results[0] is not results[1], "one exception object per caller"
    broker.fail = None
    await asyncio.wait_for(box.put(done(2)), 5)


async def test_a_bug_in_publishing_fails_the_puts_instead_of_stranding_them() -> None:
    broker = Broker()
    broker.fail = KeyError("bug")
    broker.confirm.set()
    box = Outbox(broker.publish)
    with pytest.raises(BackendUnavailable):
        await asyncio.wait_for(box.put(done(0)), 5)


async def test_stopping_the_flusher_fails_what_it_held() -> None:
    broker = Broker()
    box = Outbox(broker.publish)
    puts = [asyncio.create_task(box.put(done(i))) for i in range(2)]
    await asyncio.sleep(0)
    await asyncio.sleep(0)  # the batch is in flight, its confirm never comes
    later = asyncio.create_task(box.put(done(2)))
    await asyncio.sleep(0)
    # The outbox's own task (its flusher) is the one task here that the test did not start.
    (flusher,) = asyncio.all_tasks() - {*puts, later, asyncio.current_task()}
    flusher.cancel()
    results = await asyncio.wait_for(asyncio.gather(*puts, later, return_exceptions=True), 5)
    assert all(isinstance(r, BackendUnavailable) for r in results), results
    assert box.pending() == 0


async def test_batches_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbox_module, "MAX_BATCH", 3)
    broker = Broker()
    broker.confirm.set()
    box = Outbox(broker.publish)
    await asyncio.gather(*(box.put(done(i)) for i in range(7)))
    assert [len(b) for b in broker.batches] == [3, 3, 1]
    assert box.pending() == 0


async def test_a_cancelled_put_still_publishes_its_event() -> None:
    broker = Broker()
    box = Outbox(broker.publish)
    put = asyncio.create_task(box.put(done(0)))
    await asyncio.sleep(0)
    put.cancel()
    broker.confirm.set()
    for _ in range(5):
        await asyncio.sleep(0)
    assert [e.job_id for b in broker.batches for e in b] == [done(0).job_id]


def test_servers_read_a_single_event_or_a_batch() -> None:
    one, two = done(1), ProgressEvent(job_id="a" * 32, percent=50.0)
    assert parse_events(one.model_dump_json().encode()) == [one]
    batch = b"[" + one.model_dump_json().encode() + b"," + two.model_dump_json().encode() + b"]"
    assert parse_events(batch) == [one, two]
    assert parse_events(b'[{"type": "bogus"}]') is None
    assert parse_events(b"not json") is None


async def test_publisher_encodes_a_batch_as_a_json_array(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[tuple[str, bytes]] = []

    async def confirm(exchange: str, key: str, body: bytes, *args: object, **kw: object) -> None:
        sent.append((key, body))

    publisher = Publisher("amqp://x/", "test", Topology(), 1.0)
    monkeypatch.setattr(publisher, "_confirm", confirm)
    events: list[JobEvent] = [done(1), done(2)]
    await publisher.publish_events(events)
    assert parse_events(sent[0][1]) == events


class FakeTransport(asyncio.WriteTransport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def get_write_buffer_size(self) -> int:
        return 0


def writer() -> tuple[CoalescingWriter, FakeTransport]:
    loop = asyncio.get_running_loop()
    transport = FakeTransport()
    reader = asyncio.StreamReader()
    protocol = asyncio.StreamReaderProtocol(reader)
    return CoalescingWriter(transport, protocol, reader, loop), transport


async def test_writes_of_one_turn_reach_the_socket_as_one() -> None:
    w, transport = writer()
    w.write(b"a")
    w.write(bytearray(b"b"))
    w.write(memoryview(b"c"))
    assert transport.writes == []
    await asyncio.sleep(0)
    assert transport.writes == [b"abc"]
    w.write(b"d")
    await asyncio.sleep(0)
    assert transport.writes == [b"abc", b"d"]
    w.close()


async def test_drain_and_close_flush_first() -> None:
    w, transport = writer()
    w.write(b"x")
    await w.drain()
    assert transport.writes == [b"x"]
    w.write(b"y")
    w.close()
    assert transport.writes == [b"x", b"y"]
    await asyncio.sleep(0)  # the scheduled flush finds nothing left
    assert transport.writes == [b"x", b"y"]


async def test_write_eof_flushes_first() -> None:
    w, transport = writer()
    eof: list[int] = []
    transport.write_eof = lambda: eof.append(len(transport.writes))  # type: ignore[method-assign]
    transport.can_write_eof = lambda: True  # type: ignore[method-assign]
    w.write(b"bye")
    w.write_eof()
    assert transport.writes == [b"bye"]
    assert eof == [1], "EOF after the pending bytes"
    w.close()


async def test_a_failing_socket_write_is_not_raised_from_the_loop() -> None:
    w, transport = writer()

    def broken(data: object) -> None:
        raise RuntimeError("Cannot call write() after write_eof()")

    transport.write = broken  # type: ignore[method-assign, assignment]
    w.write(b"x")
    w.flush()
    w.close()


async def test_nothing_is_written_to_a_closing_transport() -> None:
    w, transport = writer()
    w.write(b"x")
    transport.closing = True
    await asyncio.sleep(0)
    assert transport.writes == []
