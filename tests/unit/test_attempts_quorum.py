"""Attempts on a quorum queue (attempts.py): an attempt is a run that started, recorded in the
job's markers; the broker's `x-delivery-count` (every return, also of deliveries that never
ran) is not an attempt. A delivery that may have run is attempt max(header, started + 1), never
republished to be counted; past MAX_ATTEMPTS it is poison, and the queue's own `delivery_limit`
dead letter (a backstop with slack) reads as too_many_attempts. Also where a quorum topology
publishes and how it counts idle slots."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest
from aio_pika.abc import AbstractIncomingMessage
from hypothesis import given
from hypothesis import strategies as st

from ffpool import names
from ffpool.backends.rabbitmq import attempts, publisher
from ffpool.backends.rabbitmq.attempts import Action, Decision, decide
from ffpool.backends.rabbitmq.control import Control
from ffpool.backends.rabbitmq.job_run import Lost, Run
from ffpool.backends.rabbitmq.markers import Markers
from ffpool.backends.rabbitmq.outbox import Outbox
from ffpool.backends.rabbitmq.settler import Settler
from ffpool.backends.rabbitmq.subjobs import RabbitSubJobs
from ffpool.backends.rabbitmq.worker_pool import WorkerPool
from ffpool.domain.events import FailureCode
from ffpool.domain.jobs import Job, JobSpec, PathInput, ProbeOp
from ffpool.topology import DELIVERY_LIMIT_SLACK, QueueType, Topology
from tests.fakes import FakeDelivery, FakePublisher

QUORUM = Topology(queue_type=QueueType.QUORUM)


def headers(attempt: int | None = None, count: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if attempt is not None:
        out[names.HEADER_ATTEMPT] = attempt
    if count is not None:
        out[names.HEADER_DELIVERY_COUNT] = count
    return out


@pytest.mark.parametrize(
    ("found", "quorum", "attempt"),
    [
        (headers(), True, 1),
        (headers(1, 0), True, 1),  # a first delivery
        (headers(1, 2), True, 1),  # returned twice: returns are not attempts (the markers say)
        (headers(2, 1), True, 2),
        (headers(2, 5), False, 2),  # a classic queue has no such count: the header alone
        ({names.HEADER_ATTEMPT: "x", names.HEADER_DELIVERY_COUNT: "y"}, True, 1),
        (headers(1, -3), True, 1),
        (None, True, 1),
    ],
)
def test_current_attempt(found: dict[str, Any] | None, quorum: bool, attempt: int) -> None:
    assert attempts.current_attempt(found, quorum) == attempt


@pytest.mark.parametrize(
    ("header", "started", "attempt"),
    [
        (1, None, 1),  # a fresh first delivery: no read
        (1, 0, 1),  # returned without ever running (a cancelled consumer, a lost prefetch)
        (1, 1, 2),  # attempt 1 started and was lost (kill -9): this is attempt 2
        (2, 1, 2),  # handed back at 2 (the marker lowered to 1): attempt 2 again
        (2, 2, 3),  # handed back at 2, then the copy's run 2 was lost
        (3, 1, 3),  # a header ahead of a marker whose write failed: the header wins
        (1, 5, 6),
    ],
)
def test_quorum_attempt_is_runs_started(header: int, started: int | None, attempt: int) -> None:
    assert attempts.quorum_attempt(header, started) == attempt


@given(st.integers(1, 50), st.integers(0, 50), st.integers(0, 200))
def test_returns_that_never_ran_cost_nothing(header: int, started: int, returns: int) -> None:
    """However often the broker returned a delivery that never ran (any x-delivery-count),
    the attempt is the same: only the started marker and the header decide."""
    found = headers(header, returns)
    base = attempts.quorum_attempt(attempts.current_attempt(found, quorum=True), started)
    assert base == max(header, started + 1)
    assert base == attempts.quorum_attempt(header, started)


def test_which_deliveries_may_have_run() -> None:
    assert not attempts.may_have_run(False, headers(1, 0))  # the hot path: no marker read
    assert not attempts.may_have_run(False, None)
    assert attempts.may_have_run(True, headers(1, 0))
    assert attempts.may_have_run(False, headers(1, 1))
    assert attempts.may_have_run(False, headers(2, 0))
    assert attempts.may_have_run(False, {names.HEADER_ORIGIN: b"republished"})
    assert not attempts.may_have_run(False, {names.HEADER_ORIGIN: "server-1"})
    # An idempotency key makes a possible duplicate, not a possible earlier run.
    assert attempts.maybe_duplicate(False, headers(1, 0), keyed=True)


def _counted(attempt: int, redelivered: bool = True, max_attempts: int = 3) -> Decision:
    return decide(
        redelivered=redelivered,
        attempt=attempt,
        max_attempts=max_attempts,
        completed=False,
        cancelled=False,
        counted=True,
    )


@pytest.mark.parametrize(
    ("redelivered", "attempt", "expected"),
    [
        (False, 1, Decision(Action.RUN, 1)),
        (True, 2, Decision(Action.RUN, 2)),  # one return: run as attempt 2, no republish
        (True, 3, Decision(Action.RUN, 3)),  # the last attempt still runs
        (True, 4, Decision(Action.POISON, 4)),  # the worker's own check (header > 1 cases)
        (False, 4, Decision(Action.POISON, 4)),
    ],
)
def test_counted_attempt_table(redelivered: bool, attempt: int, expected: Decision) -> None:
    assert _counted(attempt, redelivered) == expected


@given(st.integers(1, 20), st.booleans(), st.integers(1, 100))
def test_counted_never_retries_and_runs_stay_bounded(
    max_attempts: int, redelivered: bool, attempt: int
) -> None:
    d = _counted(attempt, redelivered, max_attempts)
    assert d.action in (Action.RUN, Action.POISON)
    assert d.attempt == attempt
    assert (d.action is Action.RUN) == (attempt <= max_attempts)


@given(st.integers(1, 20))
def test_the_native_limit_is_a_backstop_above_the_count(max_attempts: int) -> None:
    """A job published at attempt 1 whose every run is lost: the worker runs MAX_ATTEMPTS of
    them and dead-letters the next delivery itself, long before the broker's limit (which
    lets limit + 1 deliveries through, and also counts returns that never ran)."""
    limit = Topology(queue_type=QueueType.QUORUM, max_attempts=max_attempts).queue_arguments()[
        "x-delivery-limit"
    ]
    assert limit == max_attempts - 1 + DELIVERY_LIMIT_SLACK
    runs, started, count = 0, 0, 0
    while count <= limit:  # the broker delivers while count <= limit
        attempt = attempts.quorum_attempt(1, started if count else None)
        if _counted(attempt, count > 0, max_attempts).action is not Action.RUN:
            break  # poison: the worker dead-letters it
        runs, started, count = runs + 1, attempt, count + 1  # started, then lost
    assert runs == max_attempts
    assert count <= limit  # the worker's check fired, not the broker's limit


def test_only_a_delivery_with_the_broker_count_is_counted_by_the_broker() -> None:
    assert attempts.broker_counted(headers(1, 0), quorum=True)
    assert attempts.broker_counted(headers(1, 2), quorum=True)
    # A classic queue used as it is in a quorum topology: counted the classic way (RETRY).
    assert not attempts.broker_counted(headers(1), quorum=True)
    assert not attempts.broker_counted(headers(1, 2), quorum=False)


def test_a_returned_quorum_delivery_is_a_possible_duplicate() -> None:
    assert attempts.maybe_duplicate(False, headers(1, 1), keyed=False)
    assert not attempts.maybe_duplicate(False, headers(1, 0), keyed=False)


def test_delivery_limit_dead_letter_is_too_many_attempts() -> None:
    found = {"x-death": [{"reason": b"delivery_limit", "queue": "q", "count": 1}]}
    failure = attempts.dead_letter_failure("a" * 32, found)
    assert failure.code is FailureCode.TOO_MANY_ATTEMPTS
    assert "delivery limit" in failure.message
    assert "x-delivery-limit" in failure.message


class Sent:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, Any]] = []

    async def __call__(self, exchange: str, key: str, body: bytes, props: Any, *_: Any) -> None:
        self.sent.append((exchange, key, props))


def _publisher(topo: Topology) -> tuple[publisher.Publisher, Sent]:
    pub = publisher.Publisher("amqp://unused", "ffpool-test", topo, 1.0)
    sent = Sent()
    pub._confirm = sent  # type: ignore[method-assign,assignment]
    return pub, sent


def _job(priority: int) -> Job:
    return Job(spec=JobSpec(input=PathInput(path="a.mp4"), operation=ProbeOp()), priority=priority)


async def test_jobs_are_published_to_their_band() -> None:
    pub, sent = _publisher(QUORUM)
    for priority in (0, 3, 4, 9):
        await pub.publish_job(_job(priority), 1)
    keys = [key for _, key, _ in sent.sent]
    assert keys == ["ffmpeg_job", "ffmpeg_job", "ffmpeg_job.p4", "ffmpeg_job.p7"]
    assert [props.priority for _, _, props in sent.sent] == [0, 3, 4, 9]


async def test_classic_publishes_to_the_job_queue_with_its_priority() -> None:
    pub, sent = _publisher(Topology())
    await pub.publish_job(_job(9), 2)
    ((_, key, props),) = sent.sent
    assert key == names.JOB_ROUTING_KEY
    assert props.priority == 9
    assert props.headers[names.HEADER_ATTEMPT] == 2


async def test_an_unread_job_keeps_its_header_attempt_in_either_mode() -> None:
    """It never ran here: its broker count is dropped in quorum mode, not folded in."""
    came = {**headers(1, 2), names.HEADER_WIRE: "99.0"}
    pub, sent = _publisher(QUORUM)
    await pub.republish_unread(b"{}", came, 8, "m")
    ((_, key, props),) = sent.sent
    assert key == "ffmpeg_job.p7"
    assert props.headers[names.HEADER_ATTEMPT] == 1
    assert names.HEADER_DELIVERY_COUNT not in props.headers
    assert props.headers[names.HEADER_WIRE] == "99.0"
    classic, sent = _publisher(Topology())
    await classic.republish_unread(b"{}", dict(came), 8, "m")
    ((_, key, props),) = sent.sent
    assert key == names.JOB_ROUTING_KEY
    assert props.headers[names.HEADER_ATTEMPT] == 1  # as it came
    assert props.headers[names.HEADER_DELIVERY_COUNT] == 2


class Depths:
    """consumers and ready messages per queue, as passive declares would say."""

    def __init__(self, consumers: dict[str, int], ready: dict[str, int]) -> None:
        self.consumers, self.ready = consumers, ready

    async def consumer_count(self, queue_name: str) -> int:
        return self.consumers.get(queue_name, 0)

    async def queue_depth(self, queue_name: str) -> int:
        return self.ready.get(queue_name, 0)


class PoolMarkers:
    def __init__(self, markers: Markers) -> None:
        self.markers = markers


async def test_capacity_counts_waiting_slots_on_the_lowest_band(tmp_path: Path) -> None:
    # 4 slots wait (they consume on every band, and always on JOB_QUEUE); 2 busy slots
    # consume nowhere. A job waits in the top band and one in the lowest.
    depths = Depths(
        {"ffmpeg_job_queue": 4, "ffmpeg_job_queue.p7": 4, "ffmpeg_job_queue.p4": 4},
        {"ffmpeg_job_queue.p7": 1, "ffmpeg_job_queue": 1},
    )
    subjobs = RabbitSubJobs(
        cast(WorkerPool, PoolMarkers(Markers(tmp_path))),
        cast(publisher.Publisher, depths),
        cast(Control, None),
        QUORUM,
        lambda: None,
        1.0,
    )
    assert await subjobs.capacity() == 2
    depths.ready["ffmpeg_job_queue.p4"] = 5
    assert await subjobs.capacity() == 0  # floored


class QuorumPublisher(FakePublisher):
    quorum = True

    def __init__(self) -> None:
        super().__init__()
        self.attempts: list[int] = []

    async def publish_job(self, job: Job, attempt: int, **_: Any) -> None:
        self.attempts.append(attempt)
        await super().publish_job(job, attempt)


async def test_a_copy_of_a_lost_run_is_republished_with_its_count_not_nacked(
    tmp_path: Path,
) -> None:
    """The connection dropped mid-run and the broker's copy (count 1) reached this worker while
    the run stopped: a nack would count the lost run twice."""
    pub = QuorumPublisher()
    settler = Settler(
        cast(publisher.Publisher, pub), Markers(tmp_path), 1.0, Outbox(pub.publish_events)
    )
    job = _job(0)
    lost, copy = FakeDelivery(job), FakeDelivery(job)
    copy.headers = headers(1, 1)
    run = Run(job, 1, "w/0", cast(list[AbstractIncomingMessage], [lost, copy]))
    await settler.settle(run, Lost())
    assert pub.attempts == [2]  # the lost run counted once
    assert copy.settled == ["ack"]
    # Alone (no copy here: the broker has the job), or a classic queue: nacked as before.
    alone = FakeDelivery(job)
    await settler.settle(Run(job, 1, "w/0", cast(list[AbstractIncomingMessage], [alone])), Lost())
    uncounted = FakeDelivery(job)
    twin = Run(job, 1, "w/0", cast(list[AbstractIncomingMessage], [FakeDelivery(job), uncounted]))
    await settler.settle(twin, Lost())
    assert alone.settled == uncounted.settled == ["nack(requeue=True)"]
    assert pub.attempts == [2]
