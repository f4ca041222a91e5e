"""Sends deliveries: one job's in order, different jobs' in parallel (docs/webhooks.md).

Each job has a chain: its deliveries, in `sequence` order, sent one after the other, each
retried with back-off until it is delivered, refused for good (410) or out of its window.
Chains run side by side, at most WEBHOOK_CONCURRENCY POSTs at a time. Where the deliveries
come from (an in-process queue, or the RabbitMQ webhook queue) and what settling one means
(nothing, or an ack / a dead-letter) is the caller's: `put` and `settle`.
"""

from __future__ import annotations

import asyncio
import enum
import heapq
import itertools
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final, Protocol, TypeVar

from ffpool import logs
from ffpool.settings import Settings
from ffpool.webhooks import schedule
from ffpool.webhooks.model import WebhookDelivery
from ffpool.webhooks.schedule import Backoff, Verdict

log = logs.get(__name__)
V = TypeVar("V")
DEFAULT_BACKOFF: Final = Backoff()
# What a dispatcher remembers of jobs it served (last sent sequence, delivered ids): bounded.
REMEMBERED: Final = 10_000


class Outcome(enum.StrEnum):
    DELIVERED = "delivered"
    GONE = "gone"
    DEAD_LETTERED = "dead_lettered"


class WebhookMetrics(Protocol):
    def observe_webhook(self, outcome: str) -> None: ...


class _NoMetrics:
    def observe_webhook(self, outcome: str) -> None:
        return None


@dataclass(order=False)
class Item:
    delivery: WebhookDelivery
    handle: object = None
    """The source's own handle (a RabbitMQ message), given back to `settle`."""
    received_s: float = field(default_factory=time.monotonic)


Send = Callable[[WebhookDelivery], Awaitable[Verdict]]
Settle = Callable[[Item, Outcome], Awaitable[None]]


@dataclass
class _Chain:
    heap: list[tuple[int, int, Item]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        send: Send,
        settle: Settle,
        *,
        metrics: WebhookMetrics | None = None,
        backoff: Backoff = DEFAULT_BACKOFF,
        grace_s: float = schedule.REORDER_GRACE_S,
    ) -> None:
        self._send = send
        self._settle = settle
        self._metrics = metrics or _NoMetrics()
        self._backoff = backoff
        self._grace_s = grace_s
        self._window_s = settings.webhook_retry_seconds
        self._slots = asyncio.Semaphore(settings.webhook_concurrency)
        self._chains: dict[str, _Chain] = {}
        self._order = itertools.count()
        self._last_sent: OrderedDict[str, int] = OrderedDict()
        self._delivered: OrderedDict[str, None] = OrderedDict()
        self._stopped = False
        self._pending = 0

    @property
    def pending(self) -> int:
        """Deliveries put and not settled yet."""
        return self._pending

    def put(self, item: Item) -> None:
        """Queue a delivery behind its job's earlier ones (never blocks)."""
        job_id = item.delivery.job_id
        chain = self._chains.setdefault(job_id, _Chain())
        heapq.heappush(chain.heap, (item.delivery.seq, next(self._order), item))
        self._pending += 1
        if chain.task is None and not self._stopped:
            chain.task = asyncio.create_task(self._run(job_id, chain), name=f"webhooks-{job_id}")

    async def stop(self) -> None:
        """Stop sending; unsettled deliveries stay with their source (RabbitMQ redelivers)."""
        self._stopped = True
        tasks = [c.task for c in self._chains.values() if c.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._chains.clear()

    async def _run(self, job_id: str, chain: _Chain) -> None:
        try:
            while chain.heap:
                seq, _, item = chain.heap[0]
                wait = schedule.hold_s(
                    seq,
                    self._last_sent.get(job_id),
                    item.received_s,
                    time.monotonic(),
                    self._grace_s,
                )
                if wait > 0:
                    await asyncio.sleep(wait)
                    continue
                heapq.heappop(chain.heap)
                try:
                    await self._settle(item, await self._deliver(item.delivery))
                finally:
                    self._pending -= 1
                _remember(self._last_sent, job_id, max(seq, self._last_sent.get(job_id, 0)))
        finally:
            if self._chains.get(job_id) is chain:
                del self._chains[job_id]

    async def _deliver(self, delivery: WebhookDelivery) -> Outcome:
        if delivery.id in self._delivered:
            return Outcome.DELIVERED  # the same state change recorded twice (at-least-once)
        failures = 0
        while True:
            async with self._slots:
                verdict = await self._attempt(delivery)
            match verdict:
                case Verdict.DELIVERED:
                    _remember(self._delivered, delivery.id, None)
                    return self._done(delivery, Outcome.DELIVERED)
                case Verdict.GONE:
                    return self._done(delivery, Outcome.GONE)
                case Verdict.REFUSED:
                    return self._done(delivery, Outcome.DEAD_LETTERED)
            failures += 1
            self._metrics.observe_webhook("retried")
            delay = schedule.retry_delay(
                delivery.created_at.timestamp(),
                time.time(),
                failures,
                self._window_s,
                self._backoff,
                random.random(),  # noqa: S311 - jitter
            )
            if delay is None:
                return self._done(delivery, Outcome.DEAD_LETTERED, failures=failures)
            await asyncio.sleep(delay)

    async def _attempt(self, delivery: WebhookDelivery) -> Verdict:
        try:
            return await self._send(delivery)
        except Exception:
            # A bug costs an attempt, never the chain (its deliveries would stay unsettled).
            log.exception("webhook attempt raised", job_id=delivery.job_id)
            return Verdict.RETRY

    def _done(self, delivery: WebhookDelivery, outcome: Outcome, failures: int = 0) -> Outcome:
        self._metrics.observe_webhook(outcome.value)
        if outcome is Outcome.DEAD_LETTERED:
            log.warning(
                "webhook delivery given up",
                job_id=delivery.job_id,
                webhook_id=delivery.id,
                event_type=delivery.event_type,
                attempts=failures,
            )
        return outcome


def _remember(memory: OrderedDict[str, V], key: str, value: V) -> None:
    memory[key] = value
    memory.move_to_end(key)
    while len(memory) > REMEMBERED:
        memory.popitem(last=False)
