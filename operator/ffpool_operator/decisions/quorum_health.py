"""Quorum queues' health from the management API's queue info (pure): each job queue's and the
DLQ's leader, members online and replicas against the cluster's nodes, and the `QuorumHealthy`
condition (docs/operator.md, "Quorum queues"). A quorum queue works while a majority of its
members is online: below that it takes and gives no message; with fewer than all it works, one
more loss closer to stopping; with fewer members than the cluster has nodes (declared before
the other nodes joined) it is not replicated as the cluster could."""

from __future__ import annotations

from ffpool import names
from ffpool_operator.decisions import conditions
from ffpool_operator.decisions.broker_model import QueueInfo
from ffpool_operator.spec.pool import Condition
from ffpool_operator.spec.topology_status import QueueHealth

QUORUM_HEALTHY = "QuorumHealthy"
ALL_ONLINE = "AllMembersOnline"
DEGRADED = "MembersOffline"
UNDER_REPLICATED = "UnderReplicated"
NO_MAJORITY = "MajorityUnavailable"
NOT_QUORUM = "NotQuorum"
UNREACHABLE = "BrokerUnavailable"
"""As broker_status spells a broker that could not be asked."""


def health(info: QueueInfo, nodes: int | None = None) -> QueueHealth:
    """`nodes`: the cluster's node count (every node listed, running or not); None when it
    could not be read, then the queue's own members are all it can be held to."""
    if info.type != names.QUEUE_TYPE_QUORUM:
        return QueueHealth(name=info.name, type=info.type)
    members = len(set(info.members))
    return QueueHealth(
        name=info.name,
        type=info.type,
        leader=info.leader,
        members_online=len(set(info.online) & set(info.members)),
        members=members,
        members_expected=max(members, nodes or 0),
    )


def has_majority(q: QueueHealth) -> bool:
    """A majority of the queue's own members (the Raft group), not of the cluster's nodes."""
    return q.members_online * 2 > q.members and q.leader is not None


def _describe(q: QueueHealth) -> str:
    leader = f"leader {q.leader}" if q.leader else "no leader"
    return (
        f"{q.name}: {q.members_online}/{q.members_expected} members online"
        f" ({q.members} replicas), {leader}"
    )


def verdict(queues: list[QueueHealth], quorum: bool = True) -> tuple[bool, str, str]:
    """(status, reason, message) of `QuorumHealthy` over the queues given. `quorum`: the spec
    wants quorum queues, so a job queue or DLQ of another type (a type change refused in place)
    is not healthy, whatever the quorum ones say."""
    if quorum and (other := [q for q in queues if q.type != names.QUEUE_TYPE_QUORUM]):
        text = ", ".join(f"{q.name} ({q.type})" for q in other)
        return False, NOT_QUORUM, f"{text}: not quorum queues, on one node only (see TopologyReady)"
    quorum_queues = [q for q in queues if q.type == names.QUEUE_TYPE_QUORUM]
    if lost := [q for q in quorum_queues if not has_majority(q)]:
        text = "; ".join(_describe(q) for q in lost)
        return False, NO_MAJORITY, f"{text}: no majority, the queue takes and gives no job"
    if short := [q for q in quorum_queues if q.members_online < q.members]:
        text = "; ".join(_describe(q) for q in short)
        return True, DEGRADED, f"{text}: working, but another member lost may stop it"
    if thin := [q for q in quorum_queues if q.members < q.members_expected]:
        text = "; ".join(_describe(q) for q in thin)
        return (
            True,
            UNDER_REPLICATED,
            f"{text}: fewer replicas than cluster nodes, a node lost may stop it"
            " (add members: rabbitmq-queues grow, docs/operator.md)",
        )
    return True, ALL_ONLINE, f"{len(quorum_queues)} quorum queues, every member online"


def with_condition(
    conds: list[Condition], queues: list[QueueHealth] | None, quorum: bool, generation: int | None
) -> list[Condition]:
    """Set in quorum mode from the queues read (None: the broker could not be asked, Unknown);
    a classic pool has no such condition (one left by an earlier quorum spec goes)."""
    if not quorum:
        return [c for c in conds if c.type != QUORUM_HEALTHY]
    if queues is None:
        return conditions.set_condition(
            conds,
            QUORUM_HEALTHY,
            None,
            UNREACHABLE,
            "the broker could not be asked for its queues (see TopologyReady)",
            generation=generation,
        )
    status, reason, message = verdict(queues, quorum)
    return conditions.set_condition(
        conds, QUORUM_HEALTHY, status, reason, message, generation=generation
    )
