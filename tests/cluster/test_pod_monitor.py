"""A pool's PodMonitor on the real cluster (docs/monitoring.md, "Prometheus Operator"): before
the Prometheus Operator's CRD exists the pool says so and stays Ready; once a (minimal)
PodMonitor CRD is installed the operator's retry creates the PodMonitor, which the real RBAC
authorizer lets it write and whose selector matches the pool's running pods; disabled, it is
deleted. The example pool (the `pool` fixture) is shared: the test leaves it as it found it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ffpool import names
from ffpool_operator.flows import monitoring
from tests.cluster.controlplane import ControlPlane
from tests.cluster.pool import OPERATOR_NS, POOL, POOL_NS, get, wait_ready
from tests.polling import poll_until

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]
CRD_NAME = "podmonitors.monitoring.coreos.com"
# The Prometheus Operator's CRD reduced to what the API server needs to serve the kind; the
# real one's schema is large and checks fields this test does not depend on.
CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": CRD_NAME},
    "spec": {
        "group": "monitoring.coreos.com",
        "scope": "Namespaced",
        "names": {
            "kind": "PodMonitor",
            "listKind": "PodMonitorList",
            "plural": "podmonitors",
            "singular": "podmonitor",
        },
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            }
                        },
                    }
                },
            }
        ],
    },
}
# The reconcile retries every RETRY_SECONDS; kubectl and the API server add their time.
WAIT = 3 * monitoring.RETRY_SECONDS


def monitoring_condition(plane: ControlPlane) -> tuple[str, str]:
    conditions = get(plane, "ffp", POOL).get("status", {}).get("conditions") or []
    found: dict[str, str] = next(
        (c for c in conditions if c["type"] == monitoring.MONITORING_READY), {}
    )
    return found.get("status", ""), found.get("reason", "")


def set_pod_monitor(plane: ControlPlane, enabled: bool) -> None:
    patch = {"spec": {"monitoring": {"podMonitor": {"enabled": enabled}}}}
    plane.kubectl("patch", "ffp", POOL, "-n", POOL_NS, "--type=merge", "-p", json.dumps(patch))


def test_the_pod_monitor_waits_for_its_crd_then_follows_the_spec(
    control_plane: ControlPlane, pool: Any, operator: str
) -> None:
    wait_ready(control_plane)
    set_pod_monitor(control_plane, True)
    try:
        poll_until(
            lambda: monitoring_condition(control_plane) == ("False", monitoring.OPERATOR_MISSING),
            timeout=WAIT,
            what="MonitoringReady False PrometheusOperatorMissing",
        )
        wait_ready(control_plane)  # the pool works on without it

        control_plane.kubectl("apply", "-f", "-", input_text=json.dumps(CRD))
        control_plane.kubectl("wait", "--for=condition=Established", f"crd/{CRD_NAME}")
        who = f"--as=system:serviceaccount:{OPERATOR_NS}:{operator}"
        allowed = control_plane.run(
            "kubectl", "auth", "can-i", "delete", CRD_NAME, "-n", POOL_NS, who
        )
        assert allowed.returncode == 0, allowed.stdout + allowed.stderr
        poll_until(
            lambda: monitoring_condition(control_plane) == ("True", "PodMonitorApplied"),
            timeout=WAIT,
            what="MonitoringReady True",
        )
        created = get(control_plane, "podmonitor", POOL)
        [owner] = created["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"]) == (names.CRD_KIND, POOL)
        selector = created["spec"]["selector"]
        pods = get(control_plane, "pods", "-l", f"{names.LABEL_POOL}={POOL}")["items"]
        components = {p["metadata"]["labels"][names.LABEL_COMPONENT] for p in pods}
        # Workers may be at zero (minReplicas 0, an empty queue): the servers are always there.
        assert names.COMPONENT_SERVER in components
        assert components <= set(selector["matchExpressions"][0]["values"])
        for pod in pods:
            ports = {p["name"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}
            assert created["spec"]["podMetricsEndpoints"][0]["port"] in ports
    finally:
        set_pod_monitor(control_plane, False)
    poll_until(
        lambda: get(control_plane, "podmonitor", POOL) == {},
        timeout=WAIT,
        what="PodMonitor deleted",
    )
    poll_until(
        lambda: monitoring_condition(control_plane) == ("", ""),
        timeout=WAIT,
        what="MonitoringReady gone",
    )
    control_plane.kubectl("delete", "crd", CRD_NAME, "--timeout=60s", check=False)
    wait_ready(control_plane)
