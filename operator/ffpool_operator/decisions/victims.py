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
    settled: bool = True
    """Seen idle long enough to trust it (see `settle`); an unsettled idle pod counts as busy."""

    @property
    def busy(self) -> bool:
        return self.in_flight > 0 or not self.settled


class IdleMark(BaseModel):
    """Since when a pod has been seen idle without a break, over the same broker connections."""

    model_config = ConfigDict(frozen=True)

    since: float
    polls: int = 1
    connections: frozenset[str] = frozenset()


def _worker_pod(conn: BrokerConnection) -> str | None:
    """The pod a worker connection belongs to (WORKER_CONNECTION_PREFIX + INSTANCE_NAME)."""
    given = conn.user_provided_name or ""
    if not given.startswith(names.WORKER_CONNECTION_PREFIX):
        return None
    return given.removeprefix(names.WORKER_CONNECTION_PREFIX) or None


def in_flight_by_pod(
    connections: Iterable[BrokerConnection], channels: Iterable[BrokerChannel]
) -> dict[str, int]:
    """Unacked deliveries per worker pod, keyed by the pod name the worker put in its
    connection name (WORKER_CONNECTION_PREFIX + INSTANCE_NAME)."""
    pod_of = {conn.name: pod for conn in connections if (pod := _worker_pod(conn))}
    out: dict[str, int] = {}
    for chan in channels:
        pod = pod_of.get(chan.connection_name)
        if pod is not None:
            out[pod] = out.get(pod, 0) + chan.unacked
    return out


def connections_by_pod(connections: Iterable[BrokerConnection]) -> dict[str, frozenset[str]]:
    """The broker's names of each worker pod's connections (a reconnect changes them)."""
    out: dict[str, set[str]] = {}
    for conn in connections:
        if pod := _worker_pod(conn):
            out.setdefault(pod, set()).add(conn.name)
    return {pod: frozenset(names_) for pod, names_ in out.items()}


def settle(
    pods: Iterable[WorkerPod],
    connections: dict[str, frozenset[str]] | None,
    previous: dict[str, IdleMark],
    now: float,
    lag: float,
) -> tuple[list[WorkerPod], dict[str, IdleMark]]:
    """Which idle-looking pods are idle for sure. The management API's per-channel unacked
    counts lag by its statistics interval (`lag`), so a pod that took a job moments ago still
    looks idle: a pod is settled only when seen idle in two polls in a row, over the same
    connections (a reconnect restarts the clock), for at least `lag` seconds. Unknown
    connections (`None`) settle nobody and forget the history."""
    if connections is None:
        return [p.model_copy(update={"settled": False}) for p in pods], {}
    marks: dict[str, IdleMark] = {}
    out: list[WorkerPod] = []
    for pod in pods:
        if pod.in_flight > 0:
            out.append(pod)
            continue
        conns = connections.get(pod.name, frozenset())
        old = previous.get(pod.name)
        mark = (
            old.model_copy(update={"polls": old.polls + 1})
            if old is not None and old.connections == conns
            else IdleMark(since=now, connections=conns)
        )
        marks[pod.name] = mark
        settled = mark.polls >= 2 and now - mark.since >= lag
        out.append(pod.model_copy(update={"settled": settled}))
    return out, marks


def with_in_flight(pods: Iterable[WorkerPod], in_flight: dict[str, int]) -> list[WorkerPod]:
    return [p.model_copy(update={"in_flight": in_flight.get(p.name, 0)}) for p in pods]


def busy_count(pods: Iterable[WorkerPod]) -> int:
    return sum(1 for p in pods if p.busy)


def deletion_costs(pods: Iterable[WorkerPod], remove: int) -> dict[str, int]:
    """Cost per pod for a scale-down by `remove`: the settled idle pods to go get the lowest
    cost, pods holding jobs a cost growing with their jobs, the rest (unsettled idle pods, idle
    pods not chosen) 0, the unannotated default — so a manual scale-down below the busy count
    still removes idle pods first, then unsettled ones, then the least busy."""
    pods = sorted(pods, key=lambda p: p.name)
    idle = [p for p in pods if not p.busy]
    victims = {p.name for p in idle[: max(remove, 0)]}
    costs: dict[str, int] = {}
    for pod in pods:
        if pod.name in victims:
            costs[pod.name] = VICTIM_COST
        elif pod.in_flight > 0:
            costs[pod.name] = min(pod.in_flight * BUSY_COST_PER_JOB, INT32_MAX)
        else:
            costs[pod.name] = 0
    return costs


def cost_patches(pods: Iterable[WorkerPod], costs: dict[str, int]) -> dict[str, int]:
    """Only the pods whose annotation must change (the docs advise against churning it)."""
    current = {p.name: p.deletion_cost or 0 for p in pods}
    return {name: cost for name, cost in costs.items() if current.get(name) != cost}
