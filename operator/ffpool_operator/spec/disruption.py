"""PodDisruptionBudgets of a pool's pods (`servers.podDisruptionBudget`, on by default, and
`workers.podDisruptionBudget`, off by default): how many pods a voluntary disruption (a node
drain, a cluster upgrade) may take down at once. docs/operator.md ("PodDisruptionBudgets") says
why the workers' is off by default: they drain gracefully on SIGTERM, and a tight budget on them
blocks node drains."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, WithJsonSchema

from ffpool_operator.spec.camel import Camel
from ffpool_operator.spec.rules import Rule

# Kubernetes' IntOrString as PodDisruptionBudget takes it: a count or a percentage.
IntOrPercent = Annotated[
    Annotated[int, Field(ge=0, le=10000)] | Annotated[str, Field(pattern=r"^(100|[1-9]?[0-9])%$")],
    WithJsonSchema({"x-kubernetes-int-or-string": True}),
]
DEFAULT_MAX_UNAVAILABLE = 1


class DisruptionBudget(Camel):
    RULES = (
        Rule(
            cel="!(has(self.maxUnavailable) && has(self.minAvailable))",
            message="set at most one of maxUnavailable and minAvailable"
            " (neither means maxUnavailable 1)",
            holds=lambda b: b.max_unavailable is None or b.min_available is None,
        ),
    )

    enabled: bool = True
    max_unavailable: IntOrPercent | None = None
    """Pods a voluntary disruption may take down at once (a count or a percentage); 1 when
    neither this nor minAvailable is set."""
    min_available: IntOrPercent | None = None
    """Instead of maxUnavailable: pods that must stay up (a count or a percentage)."""

    def limit(self) -> dict[str, int | str]:
        """The PodDisruptionBudget's one limit (`spec.maxUnavailable` or `spec.minAvailable`)."""
        if self.min_available is not None:
            return {"minAvailable": self.min_available}
        if self.max_unavailable is not None:
            return {"maxUnavailable": self.max_unavailable}
        return {"maxUnavailable": DEFAULT_MAX_UNAVAILABLE}


class ServerDisruptionBudget(DisruptionBudget):
    """A PodDisruptionBudget for the server pods (on by default)."""

    enabled: bool = True


class WorkerDisruptionBudget(DisruptionBudget):
    """A PodDisruptionBudget for the worker pods (off by default: workers drain on SIGTERM, and
    a tight budget blocks node drains)."""

    enabled: bool = False
