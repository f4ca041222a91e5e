"""Busy-aware scale-down, pure part: which worker pods hold jobs (from the broker's named
connections and their channels' unacked deliveries) and which pod-deletion costs make the
ReplicaSet remove idle pods first. https://kubernetes.io/docs/reference/labels-annotations-taints/#pod-deletion-cost
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict

from ffpool import names

VICTIM_COST = -1000
BUSY_COST_PER_JOB = 1000
INT32_MAX = 2**31 - 1


class BrokerConnection(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    """The broker's own (network) name; channels refer to their connection by it."""
    user_provided_name: str | None = None


class BrokerChannel(BaseModel):
    model_config = ConfigDict(frozen=True)

    connection_name: str
    unacked: int


class WorkerPod(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    in_flight: int = 0
    deletion_cost: int | None = None
    """The cost annotation the pod carries now (None: none)."""

    @property
    def busy(self) -> bool:
        return self.in_flight > 0


def in_flight_by_pod(
    connections: Iterable[BrokerConnection], channels: Iterable[BrokerChannel]
) -> dict[str, int]:
    """Unacked deliveries per worker pod, keyed by the pod name the worker put in its
    connection name (WORKER_CONNECTION_PREFIX + INSTANCE_NAME)."""
    pod_of: dict[str, str] = {}
    for conn in connections:
        given = conn.user_provided_name or ""
        if given.startswith(names.WORKER_CONNECTION_PREFIX):
            pod_of[conn.name] = given.removeprefix(names.WORKER_CONNECTION_PREFIX)
    out: dict[str, int] = {}
    for chan in channels:
        pod = pod_of.get(chan.connection_name)
        if pod is not None:
            out[pod] = out.get(pod, 0) + chan.unacked
    return out


def with_in_flight(pods: Iterable[WorkerPod], in_flight: dict[str, int]) -> list[WorkerPod]:
    return [p.model_copy(update={"in_flight": in_flight.get(p.name, 0)}) for p in pods]


def busy_count(pods: Iterable[WorkerPod]) -> int:
    return sum(1 for p in pods if p.busy)


def deletion_costs(pods: Iterable[WorkerPod], remove: int) -> dict[str, int]:
    """Cost per pod for a scale-down by `remove`: the idle pods to go get the lowest cost, busy
    pods a cost growing with their jobs, the rest 0 (the unannotated default)."""
    pods = sorted(pods, key=lambda p: p.name)
    idle = [p for p in pods if not p.busy]
    victims = {p.name for p in idle[: max(remove, 0)]}
    costs: dict[str, int] = {}
    for pod in pods:
        if pod.name in victims:
            costs[pod.name] = VICTIM_COST
        elif pod.busy:
            costs[pod.name] = min(pod.in_flight * BUSY_COST_PER_JOB, INT32_MAX)
        else:
            costs[pod.name] = 0
    return costs


def cost_patches(pods: Iterable[WorkerPod], costs: dict[str, int]) -> dict[str, int]:
    """Only the pods whose annotation must change (the docs advise against churning it)."""
    current = {p.name: p.deletion_cost or 0 for p in pods}
    return {name: cost for name, cost in costs.items() if current.get(name) != cost}
