"""PodDisruptionBudgets of a pool's pods (`servers.podDisruptionBudget`, on by default, and
`workers.podDisruptionBudget`, off by default): how many pods a voluntary disruption (a node
drain, a cluster upgrade) may take down at once. docs/operator.md ("PodDisruptionBudgets") says
why the workers' is off by default: they drain gracefully on SIGTERM, and a tight budget on them
blocks node drains."""

from __future__ import annotations

import enum
import re
from typing import Annotated, Any

from pydantic import WithJsonSchema

from ffpool_operator.spec.camel import Camel
from ffpool_operator.spec.rules import Rule

PERCENT = r"^(100|[1-9]?[0-9])%$"
MAX_COUNT = 10000
# The schema of an int-or-string field is that marker alone (no type, pattern nor bounds), so
# the API server checks the value by this CEL rule: without it "abc" would be stored, and the
# operator would then refuse the whole pool (InvalidSpec) and stop autoscaling it.
INT_OR_PERCENT_CEL = (
    f"type(self) == int ? self >= 0 && self <= {MAX_COUNT} : self.matches('{PERCENT}')"
)
INT_OR_PERCENT_MESSAGE = f"a count from 0 to {MAX_COUNT} or a percentage from 0% to 100%"


def _int_or_percent(value: int | str) -> bool:
    if isinstance(value, int):
        return 0 <= value <= MAX_COUNT
    return re.fullmatch(PERCENT, value) is not None


# Kubernetes' IntOrString as PodDisruptionBudget takes it: a count or a percentage. The operator
# checks it with the API server's message (a pool stored before the rule existed).
IntOrPercent = Annotated[
    int | str,
    Rule(cel=INT_OR_PERCENT_CEL, message=INT_OR_PERCENT_MESSAGE, holds=_int_or_percent),
    WithJsonSchema(
        {
            "x-kubernetes-int-or-string": True,
            "x-kubernetes-validations": [
                {"rule": INT_OR_PERCENT_CEL, "message": INT_OR_PERCENT_MESSAGE}
            ],
        }
    ),
]
DEFAULT_MAX_UNAVAILABLE = 1
BLOCKS = "would block every drain: no pod could ever be evicted (enabled: false means no budget)"


class UnhealthyPodEvictionPolicy(enum.StrEnum):
    ALWAYS_ALLOW = "AlwaysAllow"
    IF_HEALTHY_BUDGET = "IfHealthyBudget"
    # Not a Kubernetes value: the budget leaves the field out. A CRD enum cannot hold null (the
    # API server refuses null even when listed), so "off" needs a name.
    CLUSTER_DEFAULT = "ClusterDefault"


class DisruptionBudget(Camel):
    RULES = (
        Rule(
            cel="!(has(self.maxUnavailable) && has(self.minAvailable))",
            message="set at most one of maxUnavailable and minAvailable"
            " (neither means maxUnavailable 1)",
            holds=lambda b: b.max_unavailable is None or b.min_available is None,
        ),
        Rule(
            cel="!has(self.maxUnavailable) || (type(self.maxUnavailable) == int"
            " ? self.maxUnavailable != 0 : self.maxUnavailable != '0%')",
            message=f"maxUnavailable 0 {BLOCKS}",
            holds=lambda b: b.max_unavailable not in (0, "0%"),
        ),
        Rule(
            cel="!has(self.minAvailable) || type(self.minAvailable) == int"
            " || self.minAvailable != '100%'",
            message=f"minAvailable 100% {BLOCKS}",
            holds=lambda b: b.min_available != "100%",
        ),
    )

    enabled: bool = True
    max_unavailable: IntOrPercent | None = None
    """Pods a voluntary disruption may take down at once (a count or a percentage); 1 when
    neither this nor minAvailable is set."""
    min_available: IntOrPercent | None = None
    """Instead of maxUnavailable: pods that must stay up (a count or a percentage)."""
    unhealthy_pod_eviction_policy: UnhealthyPodEvictionPolicy = (
        UnhealthyPodEvictionPolicy.ALWAYS_ALLOW
    )
    """The budget's unhealthyPodEvictionPolicy: AlwaysAllow lets a drain evict pods that are not
    ready (a crash-looping pod must not block it); ClusterDefault leaves the field out, for
    clusters before Kubernetes 1.27 (docs/operator.md, "PodDisruptionBudgets")."""

    def limit(self) -> dict[str, int | str]:
        """The PodDisruptionBudget's one limit (`spec.maxUnavailable` or `spec.minAvailable`)."""
        if self.min_available is not None:
            return {"minAvailable": self.min_available}
        if self.max_unavailable is not None:
            return {"maxUnavailable": self.max_unavailable}
        return {"maxUnavailable": DEFAULT_MAX_UNAVAILABLE}

    def policy(self) -> dict[str, str]:
        """The budget's `spec.unhealthyPodEvictionPolicy`, unless turned off."""
        wanted = self.unhealthy_pod_eviction_policy
        if wanted is UnhealthyPodEvictionPolicy.CLUSTER_DEFAULT:
            return {}
        return {"unhealthyPodEvictionPolicy": wanted.value}


class ServerDisruptionBudget(DisruptionBudget):
    """A PodDisruptionBudget for the server pods (on by default)."""

    enabled: bool = True


class WorkerDisruptionBudget(DisruptionBudget):
    """A PodDisruptionBudget for the worker pods (off by default: workers drain on SIGTERM, and
    a tight budget blocks node drains)."""

    enabled: bool = False


def _min_available(budget: str) -> str:
    """CEL: `budget` (a path from self) is on with a minAvailable count above 0."""
    return (
        f"has({budget}) && {budget}.enabled && has({budget}.minAvailable)"
        f" && type({budget}.minAvailable) == int && {budget}.minAvailable > 0"
    )


def blocks_all(budget: DisruptionBudget, pods: int) -> bool:
    """With at most `pods` pods, a minAvailable count of them leaves none to evict."""
    wanted = budget.min_available
    return budget.enabled and isinstance(wanted, int) and wanted > 0 and pods > 0 and wanted >= pods


# On ServersSpec: the server count is fixed, so minAvailable at or above it blocks every drain.
SERVERS_RULE = Rule(
    cel=f"!({_min_available('self.podDisruptionBudget')}"
    " && self.replicas > 0 && self.podDisruptionBudget.minAvailable >= self.replicas)",
    message=f"podDisruptionBudget.minAvailable at or above replicas {BLOCKS}",
    holds=lambda s: not blocks_all(s.pod_disruption_budget, s.replicas),
)
_WORKERS = "self.workers.podDisruptionBudget"
# The fewest workers the pool runs: minReplicas when autoscaled (the default), else replicas.
_WORKER_FLOOR = (
    "(has(self.autoscaling) && !self.autoscaling.enabled ? self.workers.replicas"
    " : (has(self.autoscaling) ? self.autoscaling.minReplicas : 0))"
)


def _worker_floor(spec: Any) -> int:
    scaling = spec.autoscaling
    return int(scaling.min_replicas if scaling.enabled else spec.workers.replicas)


def _workers_hold(spec: Any) -> bool:
    # At 0 workers there is nothing to evict, but the first worker could never be.
    return not blocks_all(spec.workers.pod_disruption_budget, max(_worker_floor(spec), 1))


# On PoolSpec: a worker minAvailable at or above the fewest workers blocks every drain whenever
# the pool runs that few (an idle autoscaled pool most of the time).
WORKERS_RULE = Rule(
    cel=f"!(has(self.workers) && {_min_available(_WORKERS)}"
    f" && {_WORKERS}.minAvailable >= {_WORKER_FLOOR})",
    message="workers.podDisruptionBudget.minAvailable at or above autoscaling.minReplicas"
    f" (or workers.replicas without autoscaling) {BLOCKS}",
    holds=_workers_hold,
)
