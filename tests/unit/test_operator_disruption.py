"""PodDisruptionBudgets (manifests/disruption.py): the servers' on by default, the workers' off,
each selecting exactly its Deployment's pods, valid policy/v1."""

from typing import Any

import kubernetes_validate
import pytest

from ffpool import names
from ffpool_operator.manifests import deployments, disruption
from ffpool_operator.spec.pool import PoolSpec
from tests.operator_harness.samples import POOL, spec

SERVER, WORKER = names.COMPONENT_SERVER, names.COMPONENT_WORKER


def _deployment(s: PoolSpec, component: str) -> dict[str, Any]:
    if component == SERVER:
        return deployments.server_deployment(POOL, s)
    return deployments.worker_deployment(POOL, s, 1)


def test_defaults_servers_on_workers_off() -> None:
    s = spec()
    server = disruption.budget(POOL, s, SERVER)
    assert server is not None
    assert server["spec"]["maxUnavailable"] == 1
    assert "minAvailable" not in server["spec"]
    assert disruption.budget(POOL, s, WORKER) is None


@pytest.mark.parametrize("component", [SERVER, WORKER])
def test_selects_exactly_the_deployments_pods(component: str) -> None:
    s = spec(workers={"podDisruptionBudget": {"enabled": True}})
    pdb = disruption.budget(POOL, s, component)
    assert pdb is not None
    dep = _deployment(s, component)
    wanted = pdb["spec"]["selector"]["matchLabels"]
    assert wanted == dep["spec"]["selector"]["matchLabels"]
    assert wanted.items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    other = _deployment(s, WORKER if component == SERVER else SERVER)
    assert not wanted.items() <= other["spec"]["template"]["metadata"]["labels"].items()
    assert pdb["metadata"]["name"] == f"{POOL.name}-{component}-pdb"
    [owner] = pdb["metadata"]["ownerReferences"]
    assert (owner["uid"], owner["controller"]) == (POOL.uid, True)


@pytest.mark.parametrize(
    ("budget", "limit"),
    [
        ({"maxUnavailable": 2}, {"maxUnavailable": 2}),
        ({"maxUnavailable": "25%"}, {"maxUnavailable": "25%"}),
        ({"minAvailable": 1}, {"minAvailable": 1}),
        ({"minAvailable": "50%"}, {"minAvailable": "50%"}),
    ],
)
def test_one_limit_validates_against_policy_v1(
    budget: dict[str, Any], limit: dict[str, Any]
) -> None:
    s = spec(
        servers={"podDisruptionBudget": budget},
        workers={"podDisruptionBudget": {"enabled": True, **budget}},
        autoscaling={"minReplicas": 2},  # above minAvailable: a drain can evict one
    )
    for component in (SERVER, WORKER):
        pdb = disruption.budget(POOL, s, component)
        assert pdb is not None
        assert {k: v for k, v in pdb["spec"].items() if k != "selector"} == {
            **limit,
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        }
        kubernetes_validate.validate(pdb, "1.30", strict=True)


def test_the_unhealthy_pod_eviction_policy_can_be_left_out() -> None:
    """ClusterDefault leaves the field out (clusters before 1.27 do not know it); the default
    lets a drain evict pods that are not ready, which a budget would otherwise count against."""
    off = spec(servers={"podDisruptionBudget": {"unhealthyPodEvictionPolicy": "ClusterDefault"}})
    pdb = disruption.budget(POOL, off, SERVER)
    assert pdb is not None
    assert "unhealthyPodEvictionPolicy" not in pdb["spec"]
    kubernetes_validate.validate(pdb, "1.25", strict=True)
    on = disruption.budget(POOL, spec(), SERVER)
    assert on is not None
    assert on["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def test_disabled_servers_budget() -> None:
    s = spec(servers={"podDisruptionBudget": {"enabled": False}})
    assert disruption.budget(POOL, s, SERVER) is None


@pytest.mark.parametrize("component", [SERVER, WORKER])
def test_topology_spread_reaches_both_pod_specs(component: str) -> None:
    constraint = {
        "maxSkew": 1,
        "topologyKey": "topology.kubernetes.io/zone",
        "whenUnsatisfiable": "ScheduleAnyway",
        "labelSelector": {"matchLabels": {names.LABEL_COMPONENT: component}},
    }
    side = {"scheduling": {"topologySpreadConstraints": [constraint]}}
    s = spec(**{"servers" if component == SERVER else "workers": side})
    pod = _deployment(s, component)["spec"]["template"]["spec"]
    assert pod["topologySpreadConstraints"] == [constraint]
