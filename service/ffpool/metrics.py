"""Prometheus metrics of one server or worker process.

Each `Metrics` owns its registry (not prometheus_client's global one), so tests can build many
apps in one process. Queue depth and active jobs are read from the backend at scrape time
rather than tracked by hand, so they can never drift from the backend's own numbers.
"""

from __future__ import annotations

import asyncio
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ffpool import logs
from ffpool.backends.base import BackendError, ServiceBackend
from ffpool.domain.events import JobState

log = logs.get(__name__)

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
# FFmpeg jobs range from a 0.1 s thumbnail to an hour-long transcode.
DURATION_BUCKETS: Final = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
STATS_TIMEOUT_SECONDS: Final = 5.0
# Every metric name starts with this, so ours never collide with other exporters' on a shared
# Prometheus (https://prometheus.io/docs/practices/naming/#metric-names).
NAMESPACE: Final = "ffpool"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self._submitted = Counter(
            "jobs_submitted", "Jobs accepted for processing", namespace=NAMESPACE, registry=reg
        )
        self._finished = Counter(
            "jobs_finished",
            "Jobs that reached a final state",
            ["operation", "state"],
            namespace=NAMESPACE,
            registry=reg,
        )
        self._duration = Histogram(
            "job_duration_seconds",
            "Wall time from start to a final state",
            ["operation"],
            buckets=DURATION_BUCKETS,
            namespace=NAMESPACE,
            registry=reg,
        )
        self._queue_depth = Gauge(
            "queue_depth", "Jobs waiting to run", namespace=NAMESPACE, registry=reg
        )
        self._active = Gauge("active_jobs", "Jobs running now", namespace=NAMESPACE, registry=reg)
        self._ws = Gauge(
            "websocket_connections", "Open WebSocket connections", namespace=NAMESPACE, registry=reg
        )
        self._errors = Counter(
            "errors",
            "Errors answered to clients, by code",
            ["code"],
            namespace=NAMESPACE,
            registry=reg,
        )
        self._webhooks = Counter(
            "webhook_deliveries",
            "Webhook deliveries by outcome, and failed attempts (retried)",
            ["outcome"],
            namespace=NAMESPACE,
            registry=reg,
        )

    def observe_webhook(self, outcome: str) -> None:
        """One webhook delivery's outcome (delivered, gone, dead_lettered, dropped) or a
        failed attempt (retried): docs/webhooks.md."""
        self._webhooks.labels(outcome=outcome).inc()

    def observe_submitted(self) -> None:
        self._submitted.inc()

    def observe_finished(self, operation: str, state: JobState, seconds: float) -> None:
        self._finished.labels(operation=operation, state=state.value).inc()
        self._duration.labels(operation=operation).observe(max(seconds, 0.0))

    def observe_error(self, code: str) -> None:
        self._errors.labels(code=code).inc()

    def ws_connected(self, delta: int) -> None:
        self._ws.inc(delta)

    async def render(self, backend: ServiceBackend | None) -> bytes:
        """The Prometheus text exposition, with the backend's gauges refreshed first. A backend
        that cannot answer leaves the gauges at their last values: the scrape still succeeds."""
        if backend is not None:
            try:
                async with asyncio.timeout(STATS_TIMEOUT_SECONDS):
                    stats = await backend.stats()
            except (BackendError, OSError, TimeoutError) as exc:
                log.warning("backend stats unavailable for metrics", error=type(exc).__name__)
            else:
                self._queue_depth.set(stats.queued_jobs)
                self._active.set(stats.active_jobs)
        return generate_latest(self.registry)
