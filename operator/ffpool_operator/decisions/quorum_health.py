"""Quorum queues' health from the management API's queue info (pure): each job queue's and the
DLQ's leader and members online, and the `QuorumHealthy` condition (docs/operator.md, "Quorum
queues"). A quorum queue works while a majority of its members is online: below that it takes
and gives no message; with fewer than all it works, one more loss closer to stopping."""

from __future__ import annotations

from ffpool import names
from ffpool_operator.decisions import conditions
from ffpool_operator.decisions.broker_model import QueueInfo
from ffpool_operator.spec.pool import Condition
from ffpool_operator.spec.topology_status import QueueHealth

QUORUM_HEALTHY = "QuorumHealthy"
ALL_ONLINE = "AllMembersOnline"
DEGRADED = "MembersOffline"
NO_MAJORITY = "MajorityUnavailable"


def health(info: QueueInfo) -> QueueHealth:
    if info.type != names.QUEUE_TYPE_QUORUM:
        return QueueHealth(name=info.name, type=info.type)
    online = len(set(info.online) & set(info.members))
    return QueueHealth(
        name=info.name,
        type=info.type,
        leader=info.leader,
        members_online=online,
        members_expected=len(info.members),
    )


def has_majority(q: QueueHealth) -> bool:
    return q.members_online * 2 > q.members_expected and q.leader is not None


def _describe(q: QueueHealth) -> str:
    leader = f"leader {q.leader}" if q.leader else "no leader"
    return f"{q.name}: {q.members_online}/{q.members_expected} members online, {leader}"


def verdict(queues: list[QueueHealth]) -> tuple[bool, str, str]:
    """(status, reason, message) of `QuorumHealthy` over the quorum queues given."""
    quorum = [q for q in queues if q.type == names.QUEUE_TYPE_QUORUM]
    lost = [q for q in quorum if not has_majority(q)]
    if lost:
        text = "; ".join(_describe(q) for q in lost)
        return False, NO_MAJORITY, f"{text}: no majority, the queue takes and gives no job"
    short = [q for q in quorum if q.members_online < q.members_expected]
    if short:
        text = "; ".join(_describe(q) for q in short)
        return True, DEGRADED, f"{text}: working, but another member lost may stop it"
    return True, ALL_ONLINE, f"{len(quorum)} quorum queues, every member online"


def with_condition(
    conds: list[Condition], queues: list[QueueHealth] | None, quorum: bool, generation: int | None
) -> list[Condition]:
    """Set in quorum mode from the queues read (None: not read, the condition stays as it
    was); a classic pool has no such condition (one left by an earlier quorum spec goes)."""
    if not quorum:
        return [c for c in conds if c.type != QUORUM_HEALTHY]
    if queues is None:
        return conds
    status, reason, message = verdict(queues)
    return conditions.set_condition(
        conds, QUORUM_HEALTHY, status, reason, message, generation=generation
    )
