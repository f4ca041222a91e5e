"""Chunk sub-jobs on the real broker (backends/rabbitmq/subjobs.py), with a fake executor:
queued, run, watched and cancelled like jobs, but never seen by servers or older workers."""

from __future__ import annotations

import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from aio_pika.abc import AbstractIncomingMessage
from prometheus_client.parser import text_string_to_metric_families

from ffpool import names
from ffpool.backends.rabbitmq import build_node, build_worker, unread, wire
from ffpool.backends.rabbitmq.feed import parse_events
from ffpool.backends.rabbitmq.worker import RabbitWorker
from ffpool.backends.tenancy import scoped
from ffpool.chunks.subjobs import SubJobs
from ffpool.domain.events import (
    CancelledEvent,
    CompletedEvent,
    FailedEvent,
    FailureCode,
    JobEvent,
    JobState,
    ProgressEvent,
    StateEvent,
)
from ffpool.domain.jobs import ChunkTask, Job, JobSpec, PathInput, ProbeOp, chunk_job_id, new_job_id
from ffpool.ffmpeg.outcome import JobFailure
from ffpool.metrics import Metrics
from ffpool.settings import Settings
from tests.fakes import FakeExecutor, FakeMetrics
from tests.integration.rabbit_harness import (
    make_settings,
    need_broker,
    prefix_for_test,
    raw_channel,
    started,
    until_state,
)
from tests.polling import eventually

pytestmark = pytest.mark.rabbitmq
MANAGEMENT_URL = "http://127.0.0.1:15672/api"


@pytest.fixture(autouse=True)
def _broker() -> None:
    need_broker()


def chunks(parent: str, *modes: str) -> list[Job]:
    """One chunk job per mode of the fake executor (ok, fail, block)."""
    return [
        Job(
            id=chunk_job_id(parent, i),
            spec=JobSpec(input=PathInput(path=mode), operation=ProbeOp()),
            priority=4,
            chunk=ChunkTask(parent=parent, index=i, count=len(modes), start_s=i, duration_s=1),
        )
        for i, mode in enumerate(modes)
    ]


def worker(prefix: str, root: Path, executor: FakeExecutor, slots: int = 1) -> RabbitWorker:
    settings = make_settings(prefix, root, "w1", max_concurrent_jobs=slots)
    return build_worker(settings, FakeMetrics(), executor)


async def outcome(subjobs: SubJobs, job_id: str) -> object:
    return await eventually(lambda: subjobs.outcome(job_id), timeout=20, what=f"{job_id} outcome")


async def consumers(settings: Settings) -> int:
    conn, channel = await raw_channel()
    async with conn:
        declared = await channel.declare_queue(settings.job_queue, passive=True)
        return int(declared.declaration_result.consumer_count)


async def test_chunks_run_and_their_progress_reaches_the_watcher(tmp_path: Path) -> None:
    async with prefix_for_test() as prefix:
        executor = FakeExecutor()
        async with started(worker(prefix, tmp_path, executor, slots=2)) as w:
            subjobs = w.subjobs()
            parent = new_job_id()
            ok, bad = chunks(parent, "ok", "fail")
            seen: list[ProgressEvent] = []
            async with subjobs.watch(parent, seen.append):
                await subjobs.submit([ok, bad])
                assert isinstance(await outcome(subjobs, ok.id), CompletedEvent)
                failed = await outcome(subjobs, bad.id)
                assert isinstance(failed, FailedEvent)
                await eventually(lambda: len(seen) >= 2, timeout=10, what="progress")
            assert {e.job_id for e in seen} == {ok.id, bad.id}
            assert await subjobs.outcome(new_job_id()) is None
            assert await subjobs.capacity() == 2
            # The failed chunk is dead-lettered as any job (its attempts its own).
            assert [r.job_id for r in await w.dead_letters()] == [bad.id]


async def test_cancel_stops_running_and_skips_queued_chunks(tmp_path: Path) -> None:
    async with prefix_for_test() as prefix:
        executor = FakeExecutor()
        async with started(worker(prefix, tmp_path, executor)) as w:
            subjobs = w.subjobs()
            running, queued = chunks(new_job_id(), "block", "block")
            await subjobs.submit([running, queued])
            await eventually(lambda: executor.started == [running.id], timeout=10, what="run")
            await subjobs.cancel([running.id, queued.id])
            assert isinstance(await outcome(subjobs, running.id), CancelledEvent)
            assert isinstance(await outcome(subjobs, queued.id), CancelledEvent)
            await eventually(lambda: w.busy_jobs() == 0, timeout=10, what="the slot free")
            probe = chunks(new_job_id(), "ok")[0]  # one slot, FIFO: the queued one was handled
            await subjobs.submit([probe])
            assert isinstance(await outcome(subjobs, probe.id), CompletedEvent)
            assert executor.started == [running.id, probe.id]
            assert executor.cancelled == [running.id]


async def test_a_lent_slot_is_one_consumer_more_while_lent(tmp_path: Path) -> None:
    async with prefix_for_test() as prefix:
        executor = FakeExecutor()
        settings = make_settings(prefix, tmp_path, "w1", max_concurrent_jobs=1)
        async with started(build_worker(settings, FakeMetrics(), executor)) as w:
            subjobs = w.subjobs()
            first, second = chunks(new_job_id(), "block", "block")
            await subjobs.submit([first, second])
            await eventually(lambda: executor.started == [first.id], timeout=10, what="slot")
            assert await consumers(settings) == 1
            async with subjobs.lend_slot():
                assert await consumers(settings) == 2
                await eventually(lambda: len(executor.started) == 2, timeout=10, what="lent")
                assert await subjobs.capacity() == 2  # both consumers, no message waiting
            # Its delivery is settled as any slot's, after the loan ended.
            executor.release()
            assert isinstance(await outcome(subjobs, second.id), CompletedEvent)
            assert await consumers(settings) == 1


async def test_chunk_events_never_reach_a_servers_records(tmp_path: Path) -> None:
    async with prefix_for_test() as prefix:
        settings = make_settings(prefix, tmp_path, "serve1", max_concurrent_jobs=1)
        async with started(build_node(settings, FakeMetrics(), FakeExecutor())) as node:
            subjobs = node.subjobs()
            # Slow enough that its `running` state (with its tenant) is published too.
            (chunk,) = chunks(new_job_id(), "slow")
            await subjobs.submit([chunk])
            assert isinstance(await outcome(subjobs, chunk.id), CompletedEvent)
            ordinary = chunks(new_job_id(), "ok")[0].model_copy(update={"chunk": None})
            await node.submit(ordinary)  # published after the chunk's events, read after them
            await until_state(node, ordinary.id, JobState.COMPLETED)
            assert node.tenant_of(chunk.id) is None  # no record from its events
            assert await node.active_jobs(chunk.tenant) == 0
            # Asked for by id, a server finds the chunk's markers: a record of no tenant,
            # which no client sees (backends/tenancy.py).
            assert await scoped(node, chunk.tenant).get(chunk.id) is None


async def test_an_older_worker_leaves_a_chunk_job_for_a_newer_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handed_back: list[object] = []
    monkeypatch.setattr(unread, "DELAY_S", 0.05)
    monkeypatch.setattr(wire, "warn_unreadable", lambda what, hdrs: handed_back.append(hdrs))
    async with prefix_for_test() as prefix:
        executor = FakeExecutor()
        settings = make_settings(prefix, tmp_path, "w1", max_concurrent_jobs=1)
        (chunk,) = chunks(new_job_id(), "ok")
        async with started(build_worker(settings, FakeMetrics(), executor)) as w:
            subjobs = w.subjobs()
            monkeypatch.setattr(wire, "MAJOR", 1)  # this worker reads as a 1.x release
            await subjobs.submit([chunk])
            await eventually(lambda: len(handed_back) >= 2, timeout=10, what="hand-backs")
            assert executor.started == []
            header = handed_back[0][names.HEADER_WIRE]  # type: ignore[index]
            assert header == wire.NEWER
            monkeypatch.setattr(wire, "MAJOR", 2)  # "upgraded": the job was kept for it
            assert isinstance(await outcome(subjobs, chunk.id), CompletedEvent)
            assert executor.started == [chunk.id]


async def close_connections(client_name: str) -> None:
    """Close a process's connections (publishing and consuming, named alike) from the
    broker's side, as a network cut does."""
    headers = {"Authorization": aiohttp.encode_basic_auth("guest", "guest")}
    async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(5)) as http:

        async def names_of() -> list[str]:
            async with http.get(f"{MANAGEMENT_URL}/connections") as resp:
                listed = await resp.json()
            props = [(str(c["name"]), c.get("client_properties", {})) for c in listed]
            found = [name for name, p in props if p.get("connection_name") == client_name]
            return found if len(found) == 2 else []

        for name in await eventually(names_of, timeout=20, what=f"{client_name} connections"):
            quoted = urllib.parse.quote(name, safe="")
            async with http.delete(f"{MANAGEMENT_URL}/connections/{quoted}") as resp:
                assert resp.status in (200, 204)


async def test_a_chunk_whose_worker_connection_dies_is_retried_as_its_own_attempt(
    tmp_path: Path,
) -> None:
    async with prefix_for_test() as prefix:
        executor = FakeExecutor(hold=True)
        settings = make_settings(prefix, tmp_path, "w1", max_concurrent_jobs=1)
        async with started(build_worker(settings, FakeMetrics(), executor)) as w:
            subjobs = w.subjobs()
            parent = new_job_id()
            (chunk,) = chunks(parent, "ok")
            async with chunk_events(settings, parent) as events:
                await subjobs.submit([chunk])
                await eventually(lambda: executor.started == [chunk.id], timeout=10, what="run")
                await close_connections(names.WORKER_CONNECTION_PREFIX + "w1")
                await eventually(lambda: len(executor.started) == 2, timeout=30, what="rerun")
                executor.release()
                assert isinstance(await outcome(subjobs, chunk.id), CompletedEvent)
            # State events are informational: one published while the link comes back may be
            # lost, so the runs are what is counted; no event may say more than attempt 2.
            assert executor.started == [chunk.id, chunk.id]
            assert max((e.attempt for e in events if isinstance(e, StateEvent)), default=1) <= 2
            assert executor.cancelled == [chunk.id]  # the first run stopped with its link


@asynccontextmanager
async def chunk_events(settings: Settings, parent: str) -> AsyncIterator[list[JobEvent]]:
    """Every event published for `parent`'s chunks, as a raw consumer bound to its key."""
    seen: list[JobEvent] = []

    async def on_message(message: AbstractIncomingMessage) -> None:
        seen.extend(parse_events(message.body) or ())

    conn, channel = await raw_channel()
    async with conn:
        exchange = await channel.get_exchange(settings.events_exchange)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, routing_key=names.chunk_events_key(parent))
        await queue.consume(on_message, no_ack=True)
        yield seen


async def test_a_full_queue_fails_the_parent_with_resource_limit(tmp_path: Path) -> None:
    async with prefix_for_test() as prefix:
        executor = FakeExecutor()
        settings = make_settings(prefix, tmp_path, "w1", max_concurrent_jobs=1, queue_max_length=1)
        async with started(build_worker(settings, FakeMetrics(), executor)) as w:
            subjobs = w.subjobs()
            running, waiting, refused = chunks(new_job_id(), "block", "block", "block")
            await subjobs.submit([running])
            await eventually(lambda: executor.started == [running.id], timeout=10, what="run")
            with pytest.raises(JobFailure) as failure:
                await subjobs.submit([waiting, refused])  # room for one message only
            assert failure.value.code is FailureCode.RESOURCE_LIMIT
            assert "no room for this job's chunks" in failure.value.message
            assert await subjobs.capacity() == 0  # one consumer, busy; one message waits
            await subjobs.cancel([running.id, waiting.id])
            assert isinstance(await outcome(subjobs, waiting.id), CancelledEvent)


async def test_an_expired_chunk_fails_its_parent_but_no_tenant_sees_it(tmp_path: Path) -> None:
    async with prefix_for_test() as prefix:
        executor = FakeExecutor()
        settings = make_settings(
            prefix, tmp_path, "serve1", max_concurrent_jobs=1, queue_message_ttl_ms=1000
        )
        async with started(build_node(settings, FakeMetrics(), executor)) as node:
            subjobs = node.subjobs()
            parent = new_job_id()
            running, expiring = (
                c.model_copy(update={"tenant": "acme"}) for c in chunks(parent, "block", "ok")
            )
            await subjobs.submit([running])
            await eventually(lambda: executor.started == [running.id], timeout=10, what="run")
            await subjobs.submit([expiring])  # waits past its TTL behind the busy slot
            # Its parent learns it from the marker the servers' dead-letter watch writes.
            failed = await outcome(subjobs, expiring.id)
            assert isinstance(failed, FailedEvent)
            assert node.tenant_of(expiring.id) is None  # no record from the dead letter
            assert await scoped(node, "acme").get(expiring.id) is None
            assert await scoped(node, "acme").dead_letters() == []
            # The operators' all-tenant list shows it: a real dead letter.
            assert [r.job_id for r in await node.dead_letters()] == [expiring.id]
            await subjobs.forget([expiring.id])  # its markers go with it
            assert await subjobs.outcome(expiring.id) is None
            await subjobs.cancel([running.id])
            assert isinstance(await outcome(subjobs, running.id), CancelledEvent)


async def test_a_restored_broker_connection_is_counted(tmp_path: Path) -> None:
    async with prefix_for_test() as prefix:
        metrics = Metrics()
        settings = make_settings(prefix, tmp_path, "w-reconnect", max_concurrent_jobs=1)
        async with started(build_worker(settings, metrics, FakeExecutor())):

            async def reconnects() -> float:
                text = (await metrics.render(None)).decode()
                for family in text_string_to_metric_families(text):
                    for sample in family.samples:
                        if sample.name == "ffpool_broker_reconnects_total":
                            return float(sample.value)
                return 0.0

            assert await reconnects() == 0
            await close_connections(names.WORKER_CONNECTION_PREFIX + "w-reconnect")
            # Both the publisher's and the consumers' connection come back (5 s apart at most).
            await eventually(
                lambda: reconnects_at_least(reconnects, 2), timeout=30, what="reconnects"
            )


async def reconnects_at_least(read: Callable[[], Awaitable[float]], count: float) -> bool:
    return await read() >= count
