"""The dispatcher with a fake sender: order per job, jobs in parallel, retries, the window,
410, de-duplication; and the back-off and hold schedules."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import pytest

from ffpool.domain.events import CompletedEvent, JobState, StateEvent
from ffpool.domain.jobs import Job, JobSpec, PathInput, ProbeOp, utcnow
from ffpool.metrics import Metrics
from ffpool.settings import Settings
from ffpool.webhooks import schedule
from ffpool.webhooks.dispatcher import Dispatcher, Item, Outcome
from ffpool.webhooks.model import TERMINAL_SEQ, WebhookDelivery, sequence
from ffpool.webhooks.schedule import Backoff, Verdict
from tests.polling import eventually

FAST = Backoff(first_s=0.01, cap_s=0.02)
URL = "https://hooks.example.com/"


def _job() -> Job:
    return Job(spec=JobSpec(input=PathInput(path="a.mp4"), operation=ProbeOp()), tenant="acme")


def _deliveries(job: Job) -> list[WebhookDelivery]:
    running = StateEvent.of(job, JobState.RUNNING, worker="w/0")
    return [
        WebhookDelivery.of(job, StateEvent.of(job, JobState.QUEUED), URL),
        WebhookDelivery.of(job, running, URL),
        WebhookDelivery.of(job, CompletedEvent(job_id=job.id, processing_time_s=0.1), URL),
    ]


class Recorder:
    """Send and settle, recorded; `answer` decides each attempt's verdict."""

    def __init__(self, answer: Callable[[WebhookDelivery, int], Verdict] | None = None) -> None:
        self.attempts: list[WebhookDelivery] = []
        self.settled: list[tuple[str, Outcome]] = []
        self.answer = answer or (lambda _d, _n: Verdict.DELIVERED)
        self.in_flight = 0
        self.most_in_flight = 0
        self.gate: asyncio.Event | None = None

    async def send(self, delivery: WebhookDelivery) -> Verdict:
        self.attempts.append(delivery)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.gate is not None:
                await self.gate.wait()
            await asyncio.sleep(0)
            count = sum(1 for d in self.attempts if d.id == delivery.id)
            return self.answer(delivery, count)
        finally:
            self.in_flight -= 1

    async def settle(self, item: Item, outcome: Outcome) -> None:
        self.settled.append((item.delivery.id, outcome))

    def sent_types(self, job: Job) -> list[str]:
        return [d.event_type for d in self.attempts if d.job_id == job.id]


def _dispatcher(rec: Recorder, **settings: object) -> Dispatcher:
    s = Settings.model_validate({"webhook_retry_seconds": 5, **settings})
    return Dispatcher(s, rec.send, rec.settle, backoff=FAST, grace_s=0.2)


async def test_one_jobs_deliveries_go_in_order_even_if_put_out_of_order() -> None:
    rec, job = Recorder(), _job()
    queued, running, done = _deliveries(job)
    dispatcher = _dispatcher(rec)
    rec.gate = asyncio.Event()
    dispatcher.put(Item(queued))
    await asyncio.sleep(0)
    for delivery in (done, running):  # a later one first: the chain sorts by sequence
        dispatcher.put(Item(delivery))
    rec.gate.set()
    await eventually(lambda: len(rec.settled) == 3, timeout=5, what="three settled")
    assert rec.sent_types(job) == ["job.queued", "job.running", "job.completed"]
    assert dispatcher.pending == 0


async def test_jobs_go_in_parallel_up_to_the_concurrency() -> None:
    rec = Recorder()
    rec.gate = asyncio.Event()
    dispatcher = _dispatcher(rec, webhook_concurrency=3)
    for _ in range(5):
        dispatcher.put(Item(_deliveries(_job())[0]))
    await eventually(lambda: rec.in_flight == 3, timeout=5, what="three in flight")
    await asyncio.sleep(0.05)
    assert rec.most_in_flight == 3
    rec.gate.set()
    await eventually(lambda: len(rec.settled) == 5, timeout=5, what="all settled")


async def test_a_failing_job_does_not_hold_up_another() -> None:
    down, up = _job(), _job()
    rec = Recorder(lambda d, _n: Verdict.RETRY if d.job_id == down.id else Verdict.DELIVERED)
    dispatcher = _dispatcher(rec)
    for delivery in _deliveries(down) + _deliveries(up):
        dispatcher.put(Item(delivery))
    await eventually(lambda: len(rec.settled) == 3, timeout=5, what="the other job's three")
    assert rec.sent_types(up) == ["job.queued", "job.running", "job.completed"]
    assert set(rec.sent_types(down)) == {"job.queued"}  # its later ones wait behind it
    await dispatcher.stop()


async def test_retry_then_success() -> None:
    rec = Recorder(lambda _d, n: Verdict.DELIVERED if n >= 3 else Verdict.RETRY)
    dispatcher = _dispatcher(rec)
    queued = _deliveries(_job())[0]
    dispatcher.put(Item(queued))
    await eventually(lambda: rec.settled, timeout=5, what="settled")
    assert rec.settled == [(queued.id, Outcome.DELIVERED)]
    assert len(rec.attempts) == 3


async def test_given_up_after_the_window() -> None:
    rec = Recorder(lambda _d, _n: Verdict.RETRY)
    dispatcher = _dispatcher(rec, webhook_retry_seconds=0.2)
    queued = _deliveries(_job())[0]
    dispatcher.put(Item(queued))
    await eventually(lambda: rec.settled, timeout=5, what="settled")
    assert rec.settled == [(queued.id, Outcome.DEAD_LETTERED)]
    assert len(rec.attempts) >= 2


async def test_an_expired_delivery_is_not_sent_again_after_a_restart() -> None:
    rec = Recorder(lambda _d, _n: Verdict.RETRY)
    old = _deliveries(_job())[0].model_copy(update={"created_at": utcnow() - timedelta(hours=2)})
    _dispatcher(rec).put(Item(old))
    await eventually(lambda: rec.settled, timeout=5, what="settled")
    assert rec.settled == [(old.id, Outcome.DEAD_LETTERED)]
    assert len(rec.attempts) == 1


@pytest.mark.parametrize(
    ("verdict", "outcome"), [(Verdict.GONE, Outcome.GONE), (Verdict.REFUSED, Outcome.DEAD_LETTERED)]
)
async def test_410_and_refused_stop_at_once(verdict: Verdict, outcome: Outcome) -> None:
    rec = Recorder(lambda _d, _n: verdict)
    queued = _deliveries(_job())[0]
    _dispatcher(rec).put(Item(queued))
    await eventually(lambda: rec.settled, timeout=5, what="settled")
    assert rec.settled == [(queued.id, outcome)]
    assert len(rec.attempts) == 1


async def test_the_same_delivery_twice_is_sent_once() -> None:
    rec = Recorder()
    dispatcher = _dispatcher(rec)
    queued = _deliveries(_job())[0]
    dispatcher.put(Item(queued))
    dispatcher.put(Item(queued))
    await eventually(lambda: len(rec.settled) == 2, timeout=5, what="both settled")
    assert len(rec.attempts) == 1


async def test_a_running_waits_briefly_for_its_queued() -> None:
    rec, job = Recorder(), _job()
    queued, running, _ = _deliveries(job)
    dispatcher = _dispatcher(rec)
    dispatcher.put(Item(running))
    await asyncio.sleep(0.05)
    dispatcher.put(Item(queued))  # arrives late, within the grace
    await eventually(lambda: len(rec.settled) == 2, timeout=5, what="both settled")
    assert rec.sent_types(job) == ["job.queued", "job.running"]


async def test_a_running_without_queued_goes_after_the_grace() -> None:
    rec = Recorder()
    running = _deliveries(_job())[1]
    _dispatcher(rec).put(Item(running))
    await eventually(lambda: rec.settled, timeout=5, what="settled")


def test_terminal_deliveries_of_a_job_share_one_id() -> None:
    job = _job()
    first, second = (_deliveries(job)[2] for _ in range(2))
    assert first.id == second.id
    assert first.seq == TERMINAL_SEQ
    queued = _deliveries(job)[0]
    assert queued.id != _deliveries(job)[0].id  # a state change is its own message


def test_sequence_orders_attempts() -> None:
    job = _job()
    order: list[StateEvent | CompletedEvent] = [
        StateEvent.of(job, JobState.QUEUED),
        StateEvent.of(job, JobState.RUNNING),
        StateEvent.of(job, JobState.QUEUED, attempt=2),
        StateEvent.of(job, JobState.RUNNING, attempt=2),
        CompletedEvent(job_id=job.id, processing_time_s=1),
    ]
    seqs = [sequence(e) for e in order]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)


def test_backoff_doubles_from_one_second_to_a_cap() -> None:
    backoff = Backoff()
    assert [backoff.delay(n, jitter=1.0) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert all(0.5 <= backoff.delay(1, jitter=j / 10) <= 1 for j in range(10))


def test_retry_delay_ends_at_the_window() -> None:
    backoff = Backoff()
    assert schedule.retry_delay(0, 10, 1, 3600, backoff, 1.0) == 1
    assert schedule.retry_delay(0, 3599.5, 1, 3600, backoff, 1.0) is None


def test_verdicts() -> None:
    assert [schedule.verdict(s) for s in (200, 204, 301, 404, 410, 500)] == [
        Verdict.DELIVERED,
        Verdict.DELIVERED,
        Verdict.RETRY,
        Verdict.RETRY,
        Verdict.GONE,
        Verdict.RETRY,
    ]


def test_hold_only_a_running_whose_queued_was_not_sent() -> None:
    assert schedule.hold_s(3, None, received_s=10, now_s=10.1, grace_s=0.5) == pytest.approx(0.4)
    assert schedule.hold_s(3, 2, received_s=10, now_s=10.1, grace_s=0.5) == 0
    assert schedule.hold_s(2, None, received_s=10, now_s=10, grace_s=0.5) == 0
    assert schedule.hold_s(TERMINAL_SEQ, None, received_s=10, now_s=10, grace_s=0.5) == 0


async def test_outcomes_are_counted_in_the_metrics() -> None:
    metrics = Metrics()
    rec = Recorder(lambda _d, n: Verdict.DELIVERED if n >= 2 else Verdict.RETRY)
    s = Settings(webhook_retry_seconds=5)
    dispatcher = Dispatcher(s, rec.send, rec.settle, metrics=metrics, backoff=FAST)
    dispatcher.put(Item(_deliveries(_job())[0]))
    await eventually(lambda: rec.settled, timeout=5, what="settled")
    text = (await metrics.render(None)).decode()
    assert 'ffpool_webhook_deliveries_total{outcome="delivered"} 1.0' in text
    assert 'ffpool_webhook_deliveries_total{outcome="retried"} 1.0' in text
