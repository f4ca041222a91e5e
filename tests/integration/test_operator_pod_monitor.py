"""The pool's PodMonitor with the real operator (KMock + real broker): without the Prometheus
Operator's CRD the pool is not failed but says so (`MonitoringReady False
PrometheusOperatorMissing`); with it the PodMonitor is created, owned by the pool and selecting
its servers' and workers' ops port; disabled, it goes. And the worker gauges the alerts read
(docs/monitoring.md)."""

from typing import Any

import kmock
import pytest
from prometheus_client import REGISTRY

from ffpool import names
from tests.kmock_ext import ApiServer
from tests.operator_harness.helpers import NS, Broker, condition, obj, pool, secret, status_when
from tests.polling import eventually

pytest_plugins = ["tests.operator_harness.fixtures"]
pytestmark = [pytest.mark.rabbitmq, pytest.mark.kmock(cls=ApiServer)]


def crd_missing(kmock_api: Any) -> None:
    """The API server without the Prometheus Operator's CRDs: its group's paths are 404s."""
    kmock_api[kmock.resource("monitoring.coreos.com", "v1", "podmonitors")] << 404


def pod_monitor(kmock_api: Any) -> dict[str, Any] | None:
    found = obj(kmock_api, "podmonitors", "pool")
    return None if found is None else dict(found)


async def respec(kube: Any, spec: dict[str, Any]) -> None:
    await kube.patch(names.CRD_KIND, NS, "pool", {"spec": spec})


def said(kmock_api: Any, status: str, reason: str) -> bool:
    found = condition(kmock_api, "MonitoringReady")
    return found is not None and (found["status"], found["reason"]) == (status, reason)


async def test_a_missing_crd_is_a_condition_not_a_failure(
    kube_api: Any, kube: Any, broker: Broker, operator: None
) -> None:
    crd_missing(kube_api)
    await kube.create(secret())
    await kube.create(pool(broker, monitoring={"podMonitor": {"enabled": True}}))
    await eventually(
        lambda: said(kube_api, "False", "PrometheusOperatorMissing"),
        timeout=15,
        what="MonitoringReady False PrometheusOperatorMissing",
    )
    missing = condition(kube_api, "MonitoringReady")
    assert missing is not None
    assert "monitoring.coreos.com" in missing["message"]
    ready = condition(kube_api, "Ready")
    assert ready is not None
    assert ready["status"] == "True"


async def test_the_pod_monitor_follows_the_spec(
    kube_api: Any, kube: Any, broker: Broker, operator: None
) -> None:
    await kube.create(secret())
    wanted = {"podMonitor": {"enabled": True, "interval": "15s", "labels": {"release": "prom"}}}
    await kube.create(pool(broker, monitoring=wanted))
    created = await eventually(lambda: pod_monitor(kube_api), timeout=15, what="PodMonitor")
    assert created is not None
    await eventually(
        lambda: said(kube_api, "True", "PodMonitorApplied"), timeout=15, what="MonitoringReady"
    )
    assert created["apiVersion"] == "monitoring.coreos.com/v1"
    assert created["metadata"]["labels"]["release"] == "prom"
    [owner] = created["metadata"]["ownerReferences"]
    assert owner["kind"] == names.CRD_KIND
    assert owner["name"] == "pool"
    selector = created["spec"]["selector"]
    assert dict(selector["matchLabels"]) == {names.LABEL_POOL: "pool"}
    [endpoint] = created["spec"]["podMetricsEndpoints"]
    assert (endpoint["port"], endpoint["path"], endpoint["interval"]) == ("ops", "/metrics", "15s")

    await respec(kube, {"monitoring": {"podMonitor": {"enabled": False}}})
    await eventually(lambda: pod_monitor(kube_api) is None, timeout=15, what="PodMonitor gone")
    await eventually(
        lambda: condition(kube_api, "MonitoringReady") is None,
        timeout=15,
        what="MonitoringReady dropped",
    )


async def test_no_pod_monitor_by_default(
    kube_api: Any, kube: Any, broker: Broker, operator: None
) -> None:
    await kube.create(secret())
    await kube.create(pool(broker))
    await eventually(
        lambda: status_when(kube_api, lambda s: s.get("observedGeneration") == 1),
        timeout=15,
        what="reconciled",
    )
    assert pod_monitor(kube_api) is None
    assert condition(kube_api, "MonitoringReady") is None


def sample(name: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"namespace": NS, "pool": "pool"})


async def test_the_autoscaler_exports_worker_limits_and_restarts(
    kube_api: Any, kube: Any, broker: Broker, operator: None
) -> None:
    """What the alerts "waiting with workers at max" and "crash looping" read (the operator runs
    in this process: its metrics are in the default registry)."""
    labels = {names.LABEL_POOL: "pool", names.LABEL_COMPONENT: names.COMPONENT_WORKER}
    worker = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "pool-worker-a", "namespace": NS, "labels": labels},
        "spec": {"containers": [{"name": "worker", "image": "ffpool:test"}]},
    }
    await kube.create(worker)  # before the pool: its first poll sees it (a baseline of 0)
    await kube.create(secret())
    await kube.create(pool(broker, autoscaling={"maxReplicas": 7}))
    await eventually(
        lambda: sample("ffpool_operator_max_workers") == 7, timeout=15, what="max workers 7"
    )
    before = sample("ffpool_operator_worker_restarts_total")
    assert before is not None
    restarted = {"containerStatuses": [{"name": "worker", "restartCount": 4}]}
    await kube.patch("Pod", NS, "pool-worker-a", {"status": restarted}, sub="status")
    await eventually(
        lambda: sample("ffpool_operator_worker_restarts_total") == before + 4,
        timeout=15,
        what="4 restarts counted",
    )
    assert sample("ffpool_operator_current_workers") is not None
    assert sample("ffpool_operator_busy_workers") is not None
