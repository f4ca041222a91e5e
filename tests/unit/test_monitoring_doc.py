"""docs/monitoring.md lists exactly the metrics the service and the operator export, with their
types and labels: read from what a scrape of each returns."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ffpool.domain.events import JobState
from ffpool.metrics import Metrics
from ffpool_operator import metrics as operator_metrics

DOC = Path(__file__).resolve().parents[2] / "docs" / "monitoring.md"
ROW = re.compile(r"^\| `(ffpool_[a-z_]+)` \| (\w+) \|([^|]*)\|")

Exported = dict[str, tuple[str, frozenset[str]]]


def documented(prefix_operator: bool) -> Exported:
    rows: Exported = {}
    for line in DOC.read_text().splitlines():
        if (found := ROW.match(line)) is None:
            continue
        name, kind, labels = found.groups()
        if name.startswith("ffpool_operator_") != prefix_operator:
            continue
        rows[name] = (kind, frozenset(re.findall(r"`([a-z_]+)`", labels)))
    return rows


def scraped(text: str, prefix: str) -> Exported:
    found: Exported = {}
    for family in text_string_to_metric_families(text):
        # `_created` is the client library's creation time of each counter and histogram.
        if not family.name.startswith(prefix) or family.name.endswith("_created"):
            continue
        name = family.name + ("_total" if family.type == "counter" else "")
        labels = {k for s in family.samples for k in s.labels if k != "le"}
        found[name] = (family.type, frozenset(labels))
    return found


async def test_the_service_exports_what_the_doc_lists() -> None:
    metrics = Metrics()
    # Every labelled metric appears once it has a value.
    metrics.observe_submitted()
    metrics.observe_started("transcode", 0.2)
    metrics.observe_finished("transcode", JobState.COMPLETED, 3.0)
    metrics.observe_completed("transcode", 10.0, 2.0, 1024)
    metrics.observe_input("transcode", 4096)
    metrics.observe_error("queue_full")
    metrics.observe_webhook("delivered")
    metrics.ws_connected(1)
    metrics.observe_reconnect()
    text = (await metrics.render(None)).decode()
    exported = {
        n: v for n, v in scraped(text, "ffpool_").items() if not n.startswith("ffpool_operator_")
    }
    assert exported == documented(prefix_operator=False)


def test_the_operator_exports_what_the_doc_lists() -> None:
    labels = {"namespace": "ns", "pool": "p"}
    operator_metrics.DECISIONS.labels(**labels, direction="up").inc(0)
    operator_metrics.RECONCILE_ERRORS.labels(**labels, stage="reconcile").inc(0)
    operator_metrics.METRICS_FAILURES.labels(**labels).inc(0)
    operator_metrics.WORKER_RESTARTS.labels(**labels).inc(0)
    for gauge in (
        operator_metrics.QUEUE_READY,
        operator_metrics.QUEUE_UNACKED,
        operator_metrics.DESIRED_WORKERS,
        operator_metrics.MAX_WORKERS,
        operator_metrics.CURRENT_WORKERS,
        operator_metrics.BUSY_WORKERS,
        operator_metrics.AUTOSCALING_PAUSED,
        operator_metrics.FALLBACK_ACTIVE,
    ):
        gauge.labels(**labels).set(0)
    text = generate_latest(REGISTRY).decode()
    assert scraped(text, "ffpool_operator_") == documented(prefix_operator=True)


def test_the_realtime_factor_is_media_seconds_per_wall_second() -> None:
    metrics = Metrics()
    metrics.observe_completed("transcode", 30.0, 10.0, 5)
    metrics.observe_completed("thumbnail", None, 0.2, 5)  # no duration: no sample
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(generate_latest(metrics.registry).decode())
        for s in family.samples
    }
    assert samples[("ffpool_realtime_factor_sum", (("operation", "transcode"),))] == 3.0
    assert ("ffpool_realtime_factor_count", (("operation", "thumbnail"),)) not in samples
    assert samples[("ffpool_output_bytes_total", (("operation", "thumbnail"),))] == 5.0


def test_worker_restarts_sum_every_container_of_every_pod() -> None:
    pods: list[dict[str, Any]] = [
        {"status": {"containerStatuses": [{"restartCount": 3}, {"restartCount": 1}]}},
        {"status": {}},
        {"status": {"containerStatuses": [{"restartCount": 2}]}},
    ]
    assert operator_metrics.restart_count(pods) == 6
    assert operator_metrics.restart_count([]) == 0
