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
# A job waits from milliseconds (idle workers) to a day under a backlog: the wait alert's
# threshold goes up to 24 h (prometheusRule.thresholds.queueWaitMinutes, docs/monitoring.md),
# and a quantile can never exceed the largest finite bucket.
WAIT_BUCKETS: Final = (
    *(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600),
    *(7200, 14400, 28800, 86400),
)
# Media seconds per wall second: a thumbnail's is small, a stream copy's in the hundreds.
SPEED_BUCKETS: Final = (0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256)
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
        self._add_job_metrics(reg)
        self._webhooks = Counter(
            "webhook_deliveries",
            "Webhook deliveries by outcome, and failed attempts (retried)",
            ["outcome"],
            namespace=NAMESPACE,
            registry=reg,
        )

    def _add_job_metrics(self, reg: CollectorRegistry) -> None:
        """What the workers tell about each job's wait, speed and output, and the DLQ."""
        self._wait = Histogram(
            "queue_wait_seconds",
            "Time from submit to start, by operation",
            ["operation"],
            buckets=WAIT_BUCKETS,
            namespace=NAMESPACE,
            registry=reg,
        )
        self._speed = Histogram(
            "realtime_factor",
            "Media seconds of output per wall second of run, completed jobs by operation",
            ["operation"],
            buckets=SPEED_BUCKETS,
            namespace=NAMESPACE,
            registry=reg,
        )
        self._out_bytes = Counter(
            "output_bytes",
            "Bytes of the outputs of completed jobs, by operation",
            ["operation"],
            namespace=NAMESPACE,
            registry=reg,
        )
        self._in_bytes = Counter(
            "input_bytes",
            "Bytes of the inputs of completed jobs as the workers read them, by operation",
            ["operation"],
            namespace=NAMESPACE,
            registry=reg,
        )
        self._reconnects = Counter(
            "broker_reconnects",
            "Broker connections restored after a loss",
            namespace=NAMESPACE,
            registry=reg,
        )
        self._dead = Gauge(
            "dead_letters",
            "Jobs in the dead-letter queue (memory: dead-lettered jobs kept)",
            namespace=NAMESPACE,
            registry=reg,
        )

    def observe_webhook(self, outcome: str) -> None:
        """One webhook delivery's outcome (delivered, gone, dead_lettered, dropped) or a
        failed attempt (retried): docs/webhooks.md."""
        self._webhooks.labels(outcome=outcome).inc()

    def observe_submitted(self) -> None:
        self._submitted.inc()

    def observe_started(self, operation: str, waited_s: float) -> None:
        self._wait.labels(operation=operation).observe(max(waited_s, 0.0))

    def observe_finished(self, operation: str, state: JobState, seconds: float) -> None:
        self._finished.labels(operation=operation, state=state.value).inc()
        self._duration.labels(operation=operation).observe(max(seconds, 0.0))

    def observe_completed(
        self, operation: str, media_s: float | None, seconds: float, out_bytes: int
    ) -> None:
        self._out_bytes.labels(operation=operation).inc(max(out_bytes, 0))
        if media_s is not None and media_s > 0 and seconds > 0:
            self._speed.labels(operation=operation).observe(media_s / seconds)

    def observe_input(self, operation: str, in_bytes: int) -> None:
        self._in_bytes.labels(operation=operation).inc(max(in_bytes, 0))

    def observe_reconnect(self) -> None:
        self._reconnects.inc()

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
                if stats.dead_letters is not None:
                    self._dead.set(stats.dead_letters)
        return generate_latest(self.registry)
