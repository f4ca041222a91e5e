"""Applies a pool's PodDisruptionBudgets (manifests/disruption.py) as the reconcile and the
repair pass apply every owned object (reconcile_io.apply_children): read first, left alone when
not the pool's, deleted when the spec turns one off (only if it is the pool's)."""

from __future__ import annotations

from ffpool_operator.decisions.drift import ChildPlan
from ffpool_operator.decisions.ownership import Owner, owner_of
from ffpool_operator.kube.client import Kube
from ffpool_operator.manifests import disruption
from ffpool_operator.spec.pool import PoolRef, PoolSpec


async def apply_disruption_budgets(
    kube: Kube, pool: PoolRef, spec: PoolSpec, plan: ChildPlan
) -> None:
    for component in disruption.COMPONENTS:
        name = disruption.budget_name(pool, component)
        live = await kube.get("PodDisruptionBudget", pool.namespace, name)
        desired = disruption.budget(pool, spec, component)
        if desired is not None:
            if plan.wants(desired, live):
                plan.applied(desired, await kube.apply(desired))
        elif owner_of(live, pool.uid) is Owner.OWN:
            await kube.delete("PodDisruptionBudget", pool.namespace, name)
