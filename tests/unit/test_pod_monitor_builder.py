"""The pool's PodMonitor (manifests/monitoring.py) and its spec field (spec/monitoring.py): off
by default, selecting the servers' and workers' ops port, owned by the pool, labelled for the
Prometheus that should pick it up (docs/monitoring.md, "Prometheus Operator")."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from ffpool import names
from ffpool_operator.manifests import deployments, monitoring, objects
from ffpool_operator.spec.monitoring import PodMonitorSpec
from ffpool_operator.spec.pool import PoolRef, PoolSpec

POOL = PoolRef(name="tv", namespace="media", uid="u-1")


def spec(**pod_monitor: Any) -> PoolSpec:
    return PoolSpec.model_validate(
        {
            "image": "ffpool:1",
            "rabbitmq": {"secretName": "rmq"},
            "storage": {"claimName": "media"},
            "auth": {"allowAnonymous": True},
            "monitoring": {"podMonitor": pod_monitor},
        }
    )


def test_off_by_default() -> None:
    assert spec().monitoring.pod_monitor == PodMonitorSpec(enabled=False, interval="30s")


def test_selects_the_pools_servers_and_workers_on_their_ops_port() -> None:
    built = monitoring.pod_monitor(POOL, spec(enabled=True, interval="1m", labels={"r": "p"}))
    assert (built["apiVersion"], built["kind"]) == ("monitoring.coreos.com/v1", "PodMonitor")
    assert built["metadata"]["namespace"] == "media"
    assert built["metadata"]["labels"]["r"] == "p"
    assert built["metadata"]["ownerReferences"] == [objects.owner_reference(POOL)]
    body = built["spec"]
    assert body["namespaceSelector"] == {"matchNames": ["media"]}
    selector = body["selector"]
    assert selector["matchLabels"] == {names.LABEL_POOL: "tv"}
    [components] = selector["matchExpressions"]
    assert set(components["values"]) == {names.COMPONENT_SERVER, names.COMPONENT_WORKER}
    [endpoint] = body["podMetricsEndpoints"]
    assert (endpoint["port"], endpoint["path"], endpoint["interval"]) == ("ops", "/metrics", "1m")
    for component in (names.COMPONENT_SERVER, names.COMPONENT_WORKER):
        labels = objects.labels(POOL, component)
        assert selector["matchLabels"].items() <= labels.items()
        assert labels[names.LABEL_COMPONENT] in components["values"]


def test_the_pods_really_have_that_port() -> None:
    pool_spec = spec(enabled=True)
    for deployment in (
        deployments.server_deployment(POOL, pool_spec),
        deployments.worker_deployment(POOL, pool_spec),
    ):
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        assert "ops" in {port["name"] for port in container["ports"]}


def test_pool_and_component_become_target_labels() -> None:
    [endpoint] = monitoring.pod_monitor(POOL, spec(enabled=True))["spec"]["podMetricsEndpoints"]
    relabel = {r["targetLabel"]: r["sourceLabels"] for r in endpoint["relabelings"]}
    assert relabel == {
        "pool": ["__meta_kubernetes_pod_label_ffpool_dev_pool"],
        "component": ["__meta_kubernetes_pod_label_ffpool_dev_component"],
    }


def test_the_pools_own_labels_win_over_extra_ones() -> None:
    built = monitoring.pod_monitor(POOL, spec(enabled=True, labels={names.LABEL_POOL: "other"}))
    assert built["metadata"]["labels"][names.LABEL_POOL] == "tv"


@pytest.mark.parametrize("interval", ["", "30", "1 m", "-5s", "1d"])
def test_intervals_are_prometheus_durations(interval: str) -> None:
    with pytest.raises(ValidationError):
        spec(enabled=True, interval=interval)


@pytest.mark.parametrize("interval", ["15s", "1m30s", "500ms", "2h"])
def test_good_intervals(interval: str) -> None:
    assert spec(interval=interval).monitoring.pod_monitor.interval == interval
