"""Ordered upgrades, pure: when a pool's image changes, the servers roll before the workers.

New servers read what old workers send (the wire format's older versions), and a job of a new
wire major waits in the queue for new workers instead of failing at old ones
(docs/rabbitmq.md, "Wire format and upgrades"); releases before versioning need servers
first outright. So the worker Deployment keeps its running image until the server
Deployment's rollout is complete (docs/operator.md, "Upgrades").
"""

from __future__ import annotations

import enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ffpool_operator.decisions import conditions
from ffpool_operator.spec.pool import Condition, ConditionStatus

UPGRADING = "Upgrading"
# How often the reconcile looks again while a rollout is under way: a pod's start is seconds.
POLL_SECONDS = 5.0


class Phase(enum.StrEnum):
    SERVERS_ROLLING_OUT = "ServersRollingOut"
    WORKERS_ROLLING_OUT = "WorkersRollingOut"
    ROLLED_OUT = "RolledOut"


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class RolloutStatus(_Loose):
    observed_generation: int | None = Field(default=None, alias="observedGeneration")
    replicas: int = 0
    updated_replicas: int = Field(default=0, alias="updatedReplicas")
    available_replicas: int = Field(default=0, alias="availableReplicas")


class DeploymentView(BaseModel):
    """What a rollout decision needs of a live Deployment."""

    model_config = ConfigDict(frozen=True)

    generation: int | None
    replicas: int
    image: str | None
    status: RolloutStatus | None

    @classmethod
    def parse(cls, live: dict[str, Any]) -> DeploymentView:
        spec = live.get("spec") or {}
        containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
        raw_status = live.get("status")
        return cls(
            generation=(live.get("metadata") or {}).get("generation"),
            replicas=int(spec.get("replicas", 1)),  # Kubernetes' default when unset
            image=containers[0].get("image") if containers else None,
            status=RolloutStatus.model_validate(raw_status) if raw_status else None,
        )

    def complete(self) -> bool:
        """The Deployment controller has seen the current template and every replica runs it
        and is available, with no old pod left (what `kubectl rollout status` waits for)."""
        s = self.status
        if s is None or s.observed_generation is None or self.generation is None:
            return False
        return (
            s.observed_generation >= self.generation
            and s.updated_replicas == self.replicas
            and s.replicas == self.replicas
            and s.available_replicas == self.replicas
        )

    def replacing(self) -> bool:
        """Pods of an older template still run. Unlike `complete`, neither a scale-up (new
        pods not yet available) nor a replicas change the controller has not seen yet (the
        autoscaler's, every few seconds) counts as a rollout."""
        return self.status is not None and self.status.updated_replicas < self.status.replicas


class Plan(BaseModel):
    model_config = ConfigDict(frozen=True)

    worker_image: str
    phase: Phase
    message: str


def plan(
    image: str,
    server: DeploymentView | None,
    worker: DeploymentView | None,
    upgrading: bool = False,
) -> Plan:
    """The image the worker Deployment gets now, and where the rollout stands. `server` is
    the server Deployment as applied with `image`; `worker` the live one, if any; `upgrading`
    whether an image rollout was under way (the `Upgrading` condition): only then do old
    worker pods still running mean the upgrade is not over (any other template change rolls
    pods too, and is no upgrade)."""
    old = worker.image if worker is not None else None
    if old is not None and old != image:
        if server is None or not server.complete():
            return Plan(
                worker_image=old,
                phase=Phase.SERVERS_ROLLING_OUT,
                message=f"servers rolling out {image}; workers keep {old} until they are done",
            )
        return Plan(
            worker_image=image,
            phase=Phase.WORKERS_ROLLING_OUT,
            message=f"servers run {image}; workers rolling out",
        )
    if upgrading and worker is not None and worker.replacing():
        return Plan(
            worker_image=image,
            phase=Phase.WORKERS_ROLLING_OUT,
            message=f"workers rolling out {image}",
        )
    done = f"servers and workers run {image}"
    return Plan(worker_image=image, phase=Phase.ROLLED_OUT, message=done)


def reported(plan_: Plan, has_condition: bool) -> bool:
    """Whether to write the Upgrading condition: during a rollout, and once to clear it; a pool
    that never upgraded does not carry it."""
    return plan_.phase is not Phase.ROLLED_OUT or has_condition


def in_progress(conds: list[Condition]) -> bool:
    return any(c.type == UPGRADING and c.status == ConditionStatus.TRUE for c in conds)


def with_condition(conds: list[Condition], plan_: Plan, generation: int | None) -> list[Condition]:
    """`Upgrading`: True with the phase as reason while an image rolls out, then False
    (`RolledOut`); absent on a pool that never upgraded."""
    if not reported(plan_, any(c.type == UPGRADING for c in conds)):
        return conds
    rolling = plan_.phase is not Phase.ROLLED_OUT
    return conditions.set_condition(
        conds, UPGRADING, rolling, plan_.phase.value, plan_.message, generation=generation
    )
