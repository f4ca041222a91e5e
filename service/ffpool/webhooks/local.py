"""Webhooks of the memory backend: an in-process, bounded queue in front of the dispatcher.

Like the memory backend's jobs, its deliveries live in memory only: a restart loses the
ones not sent yet (the RabbitMQ backend keeps them in a durable queue, rabbit.py).
"""

from __future__ import annotations

from typing import Final

from ffpool import logs
from ffpool.webhooks.dispatcher import Dispatcher, Item, Outcome, WebhookMetrics
from ffpool.webhooks.model import WebhookDelivery

log = logs.get(__name__)
# Deliveries waiting in one process (a receiver down for long holds its jobs' ones here).
MAX_PENDING: Final = 10_000


class LocalQueue:
    def __init__(self, metrics: WebhookMetrics | None = None, capacity: int = MAX_PENDING) -> None:
        self._metrics = metrics
        self._capacity = capacity
        self.dispatcher: Dispatcher | None = None

    async def put(self, delivery: WebhookDelivery) -> None:
        """The notifier's sink: never blocks a job; over capacity the delivery is dropped."""
        dispatcher = self.dispatcher
        if dispatcher is None:
            return
        if dispatcher.pending >= self._capacity:
            log.warning(
                "webhook queue full: delivery dropped",
                job_id=delivery.job_id,
                webhook_id=delivery.id,
                pending=dispatcher.pending,
            )
            if self._metrics is not None:
                self._metrics.observe_webhook("dropped")
            return
        dispatcher.put(Item(delivery))

    async def settle(self, item: Item, outcome: Outcome) -> None:
        """Nothing to acknowledge in memory: a delivery given up is gone (logged)."""
        return
