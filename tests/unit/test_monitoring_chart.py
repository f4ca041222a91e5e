"""The chart's Prometheus Operator objects and Grafana dashboard (docs/monitoring.md), rendered by
the real Helm engine: nothing when off (the default), the right objects when on, and a values
schema that rejects what Prometheus or Kubernetes would. The rules' PromQL is loaded into a real
promtool in tests/integration/test_monitoring_promtool.py."""

from __future__ import annotations

import json
from typing import Any

import helm_python
import pytest

from ffpool.metrics import WAIT_BUCKETS
from tests import helmchart
from tests.helmchart import CHART, manifests, of_kind

MONITORING_KINDS = {"ServiceMonitor", "PrometheusRule"}
ALL_ON = helmchart.VARIANTS["prometheus-operator"]
DASHBOARD = CHART / "dashboards" / "ffpool.json"


def test_off_by_default() -> None:
    objs = manifests()
    assert not MONITORING_KINDS & {o["kind"] for o in objs}
    assert of_kind(objs, "ConfigMap") == []
    assert of_kind(objs, "Service") == []


def test_service_monitor_scrapes_the_operator_metrics_service() -> None:
    objs = manifests({"serviceMonitor": {"enabled": True, "interval": "15s", "labels": {"a": "b"}}})
    [monitor] = of_kind(objs, "ServiceMonitor")
    [service] = of_kind(objs, "Service")  # brought along, though metrics.service is off
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["a"] == "b"
    assert monitor["metadata"]["namespace"] == helmchart.NAMESPACE
    selected = monitor["spec"]["selector"]["matchLabels"]
    assert selected.items() <= service["metadata"]["labels"].items()
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"] == "metrics"
    assert endpoint["interval"] == "15s"
    assert (
        endpoint["honorLabels"] is True
    )  # the pools' namespace label wins (the template says why)
    assert "scrapeTimeout" not in endpoint


def test_prometheus_rule_takes_its_thresholds_from_values() -> None:
    values = {
        "prometheusRule": {
            "enabled": True,
            "labels": {"release": "prom"},
            "thresholds": {"queueWaitMinutes": 7, "reconcileErrorMinutes": 20},
        }
    }
    [rule] = of_kind(manifests(values), "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "prom"
    [group] = rule["spec"]["groups"]
    alerts = {r["alert"]: r for r in group["rules"]}
    assert set(alerts) == {
        "FFpoolDeadLettersGrowing",
        "FFpoolJobsWaitingAtMaxWorkers",
        "FFpoolAutoscalerMetricsUnavailable",
        "FFpoolWorkersCrashLooping",
        "FFpoolOperatorReconcileErrors",
    }
    assert "> 420" in alerts["FFpoolJobsWaitingAtMaxWorkers"]["expr"]
    assert alerts["FFpoolOperatorReconcileErrors"]["for"] == "20m"
    for alert in alerts.values():
        assert alert["labels"]["severity"] in {"warning", "critical"}
        assert alert["for"]
        assert {"summary", "description"} <= set(alert["annotations"])
        assert "{{ $labels.pool }}" in alert["annotations"]["summary"]  # Prometheus' own


def test_dashboard_config_map_carries_the_repository_file() -> None:
    values = {"grafanaDashboard": {"enabled": True, "annotations": {"grafana_folder": "ffpool"}}}
    [config_map] = of_kind(manifests(values), "ConfigMap")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["annotations"] == {"grafana_folder": "ffpool"}
    assert json.loads(config_map["data"]["ffpool.json"]) == json.loads(DASHBOARD.read_text())
    moved = manifests({"grafanaDashboard": {"enabled": True, "namespace": "grafana"}})
    assert of_kind(moved, "ConfigMap")[0]["metadata"]["namespace"] == "grafana"


def test_everything_on_renders_each_object_once() -> None:
    kinds = [o["kind"] for o in manifests(ALL_ON)]
    for kind in ("ServiceMonitor", "PrometheusRule", "ConfigMap", "Service"):
        assert kinds.count(kind) == 1, kind


@pytest.mark.parametrize(
    ("values", "where"),
    [
        ({"serviceMonitor": {"enabled": "yes"}}, "/serviceMonitor/enabled"),
        ({"serviceMonitor": {"interval": "30"}}, "/serviceMonitor/interval"),
        ({"serviceMonitor": {"interval": "half a minute"}}, "/serviceMonitor/interval"),
        ({"serviceMonitor": {"scrapeTimeout": "10 s"}}, "/serviceMonitor/scrapeTimeout"),
        ({"serviceMonitor": {"labels": {"a": 1}}}, "/serviceMonitor/labels/a"),
        ({"serviceMonitor": {"selector": {}}}, "/serviceMonitor"),
        ({"prometheusRule": {"labels": []}}, "/prometheusRule/labels"),
        ({"prometheusRule": {"thresholds": {"queueWaitMinutes": 0}}}, "/queueWaitMinutes"),
        ({"prometheusRule": {"thresholds": {"queueWaitMinutes": 2.5}}}, "/queueWaitMinutes"),
        ({"prometheusRule": {"thresholds": {"workerRestarts": -1}}}, "/workerRestarts"),
        (
            {"prometheusRule": {"thresholds": {"metricsUnavailableMinutes": 100000}}},
            "/metricsUnavailableMinutes",
        ),
        ({"prometheusRule": {"thresholds": {"waitMinutes": 5}}}, "/prometheusRule/thresholds"),
        ({"grafanaDashboard": {"namespace": "Not_A_Namespace"}}, "/grafanaDashboard/namespace"),
        ({"grafanaDashboard": {"enabled": 1}}, "/grafanaDashboard/enabled"),
    ],
)
def test_values_schema_rejects(values: dict[str, Any], where: str) -> None:
    with pytest.raises(helm_python.HelmValuesError) as info:
        helmchart.render(values)
    assert where in str(info.value)


def test_the_wait_buckets_reach_the_largest_wait_threshold() -> None:
    """histogram_quantile never returns more than the largest finite bucket: a threshold above
    it could never fire on the p95 (docs/monitoring.md, "Alerts")."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    rule = schema["properties"]["prometheusRule"]["properties"]["thresholds"]["properties"]
    assert rule["queueWaitMinutes"]["maximum"] * 60 <= max(WAIT_BUCKETS)


def test_the_restart_alert_reads_the_counter() -> None:
    [rule] = of_kind(manifests({"prometheusRule": {"enabled": True}}), "PrometheusRule")
    alerts = {r["alert"]: r for r in rule["spec"]["groups"][0]["rules"]}
    restarts = alerts["FFpoolWorkersCrashLooping"]["expr"]
    assert "increase(ffpool_operator_worker_restarts_total[15m])" in restarts
    waiting = alerts["FFpoolJobsWaitingAtMaxWorkers"]
    assert "ffpool_operator_queue_ready" in waiting["expr"]
    assert waiting["for"] == "5m"
