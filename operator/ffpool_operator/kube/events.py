"""Kubernetes Events on the pool, what `kubectl describe ffp` shows: one per condition change a
user should see, and one per failure that has no condition. Deciding is pure (`changes`,
`Limiter.admit`); `post` hands the survivors to kopf's background poster.

kopf's own posting of log lines (`settings.posting.loggers`) stays off: it would post every
handler retry as a `Logging` event of type `Error` (not a type `kubectl` filters on), while a
condition that stays False must post once (docs/operator.md, "Events")."""

from __future__ import annotations

import enum
from collections import OrderedDict
from dataclasses import dataclass, field

import kopf
from pydantic import BaseModel, ConfigDict

from ffpool import names
from ffpool_operator.spec.pool import Condition, ConditionStatus, PoolRef

# `Scaling` flips with every scale-up and has its own `Scaled` event (docs/operator.md).
QUIET_TYPES = frozenset({"Scaling"})
BURST = 10
REFILL_SECONDS = 60.0
"""Per pool, a bucket of BURST events refilled by one every REFILL_SECONDS: a condition that
flaps at every poll posts a few events and then one a minute, while a change after a quiet
spell always gets through. What the bucket refuses is logged only."""
REPEAT_SECONDS = 600.0
"""For failures without a condition (a failed autoscaling poll): the same event is posted at
most once in this window, as a condition that stays False posts once."""
MAX_POOLS = 1000


class EventType(enum.StrEnum):
    NORMAL = "Normal"
    WARNING = "Warning"


class PoolEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: EventType
    reason: str
    message: str


def _key(c: Condition) -> tuple[ConditionStatus, str]:
    return c.status, c.reason


def changes(old: list[Condition], new: list[Condition]) -> list[PoolEvent]:
    """An event per condition whose (status, reason) changed; a changed message alone is no
    change. Conditions that change to the same reason together (Ready=False and
    TopologyReady=Unknown, both `BrokerUnavailable`) make one event naming both, a Warning
    unless all are True."""
    before = {c.type: _key(c) for c in old}
    grouped: dict[str, list[Condition]] = {}
    for c in new:
        if c.type not in QUIET_TYPES and before.get(c.type) != _key(c):
            grouped.setdefault(c.reason, []).append(c)
    events = []
    for reason, conds in grouped.items():
        healthy = all(c.status is ConditionStatus.TRUE for c in conds)
        kind = EventType.NORMAL if healthy else EventType.WARNING
        said = ", ".join(f"{c.type}={c.status.value}" for c in conds)
        detail = next((c.message for c in conds if c.message), "")
        message = f"{said}: {detail}" if detail else said
        events.append(PoolEvent(type=kind, reason=reason, message=message[:1000]))
    return events


@dataclass
class _Bucket:
    tokens: float
    at: float
    posted: dict[PoolEvent, float] = field(default_factory=dict)


class Limiter:
    """Per-pool memory of what was posted; deterministic (the caller passes the time)."""

    def __init__(self) -> None:
        self._pools: OrderedDict[str, _Bucket] = OrderedDict()

    def admit(self, pool_uid: str, event: PoolEvent, now: float, repeat: float = 0.0) -> bool:
        """`repeat`: refuse an event identical to one posted less than this long ago."""
        bucket = self._pools.setdefault(pool_uid, _Bucket(tokens=BURST, at=now))
        self._pools.move_to_end(pool_uid)
        while len(self._pools) > MAX_POOLS:  # pools deleted while the operator was down
            self._pools.popitem(last=False)
        bucket.tokens = min(BURST, bucket.tokens + (now - bucket.at) / REFILL_SECONDS)
        bucket.at = now
        last = bucket.posted.get(event)
        if (last is not None and now - last < repeat) or bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        bucket.posted = {e: t for e, t in bucket.posted.items() if now - t < REPEAT_SECONDS}
        bucket.posted[event] = now
        return True

    def forget(self, pool_uid: str) -> None:
        self._pools.pop(pool_uid, None)


LIMITER = Limiter()
"""The operator process's memory, like kopf's own event queue: lost on restart, when the pool's
conditions (read back from its status) still keep a persisting failure from posting again."""


def reference(pool: PoolRef) -> kopf.Body:
    """The pool as kopf's event poster needs it (the involved object)."""
    return kopf.Body(
        {
            "apiVersion": f"{names.API_GROUP}/{names.API_VERSION}",
            "kind": names.CRD_KIND,
            "metadata": {"name": pool.name, "namespace": pool.namespace, "uid": pool.uid},
        }
    )


def post(
    pool: PoolRef,
    events: list[PoolEvent],
    now: float,
    *,
    repeat: float = 0.0,
    limiter: Limiter = LIMITER,
) -> list[PoolEvent]:
    """Queues the admitted events (kopf posts them in the background, with retries, so a slow
    API server never holds a handler); returns what was posted."""
    posted = [e for e in events if limiter.admit(pool.uid, e, now, repeat)]
    for e in posted:
        kopf.event(reference(pool), type=e.type.value, reason=e.reason, message=e.message)
    return posted
