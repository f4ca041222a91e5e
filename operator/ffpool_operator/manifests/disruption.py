"""Pure builders of a pool's PodDisruptionBudgets (policy/v1): one for the servers, on by
default, one for the workers, off by default (spec/disruption.py says why). Each selects its
component's pods by the same labels as its Deployment's selector."""

from __future__ import annotations

from ffpool import names
from ffpool_operator.manifests.objects import Manifest, child_name, metadata, selector
from ffpool_operator.spec.disruption import DisruptionBudget
from ffpool_operator.spec.pool import PoolRef, PoolSpec

KIND = "PodDisruptionBudget"
COMPONENTS = (names.COMPONENT_SERVER, names.COMPONENT_WORKER)


def budget_name(pool: PoolRef, component: str) -> str:
    return child_name(pool, f"{component}-pdb")


def settings(spec: PoolSpec, component: str) -> DisruptionBudget:
    if component == names.COMPONENT_SERVER:
        return spec.servers.pod_disruption_budget
    return spec.workers.pod_disruption_budget


def budget(pool: PoolRef, spec: PoolSpec, component: str) -> Manifest | None:
    """The component's budget; None when the spec turns it off."""
    wanted = settings(spec, component)
    if not wanted.enabled:
        return None
    return {
        "apiVersion": "policy/v1",
        "kind": KIND,
        "metadata": metadata(pool, budget_name(pool, component), component),
        "spec": {
            "selector": {"matchLabels": selector(pool, component)},
            **wanted.limit(),
            **wanted.policy(),
        },
    }
