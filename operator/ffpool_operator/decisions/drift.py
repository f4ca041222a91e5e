"""Drift of the owned objects, pure: what to do with each child (create, apply, repair, keep, or
leave alone because it is not the pool's), what a repair pass found, and how that shows in the
pool's conditions. The I/O is in flows/reconcile_io.py (apply_children) and flows/repair.py
(repair_once) (docs/operator.md, "Drift and ownership")."""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict

from ffpool_operator.decisions import conditions
from ffpool_operator.decisions.ownership import Conflict, Owner, describe_owner, owner_of
from ffpool_operator.spec.pool import Condition, ConditionStatus

# Every tick reads each owned object once (up to eight GETs per pool), so a missing or edited
# child is back within about this long without a watch on six more kinds.
REPAIR_SECONDS = 5.0
WORKLOADS_READY = "WorkloadsReady"
DEPLOYMENT_MISSING = "DeploymentMissing"
OWNERSHIP_CONFLICT = "OwnershipConflict"
REPAIR_FAILED = "RepairFailed"
# Ready reasons this module sets and therefore may clear again; any other reason belongs to the
# reconcile (broker, tokens, spec) and is never overwritten by a repair that went well.
OWN_READY_REASONS = frozenset({DEPLOYMENT_MISSING, OWNERSHIP_CONFLICT, REPAIR_FAILED})


class Action(enum.StrEnum):
    CREATE = "create"
    APPLY = "apply"
    REPAIR = "repair"
    KEEP = "keep"
    CONFLICT = "conflict"


def covers(desired: Any, live: Any) -> bool:
    """Whether every field the operator sets has that value on the live object. Fields the API
    server defaults or other managers add (labels, annotations, `replicas`, `status`) are extra
    and do not count; list elements are compared in order, each by the same rule."""
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(
            k in live and covers(v, live[k]) for k, v in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(desired) == len(live)
            and all(covers(d, x) for d, x in zip(desired, live, strict=True))
        )
    return bool(desired == live)


def resource_version(obj: dict[str, Any] | None) -> str | None:
    rv = ((obj or {}).get("metadata") or {}).get("resourceVersion")
    return None if rv is None else str(rv)


def decide(
    desired: dict[str, Any],
    live: dict[str, Any] | None,
    pool_uid: str,
    repair: bool,
    synced: str | None,
) -> Action:
    """`synced` is the resourceVersion the operator's last apply of this object returned: an
    object unchanged since is not even compared."""
    owner = owner_of(live, pool_uid)
    if owner is Owner.ABSENT:
        return Action.CREATE
    if owner is Owner.FOREIGN:
        return Action.CONFLICT
    if not repair:
        return Action.APPLY
    if synced is not None and resource_version(live) == synced:
        return Action.KEEP
    return Action.KEEP if covers(desired, live) else Action.REPAIR


def key(manifest: dict[str, Any]) -> str:
    return f"{manifest['kind']} {manifest['metadata']['name']}"


@dataclass
class ChildPlan:
    """One pass over the children (a reconcile, or a repair tick when `repair`): the I/O asks
    `wants` before each apply and reports each apply's answer to `applied`. `synced` is the
    pool's memory of resourceVersions across passes (runtime.PoolState)."""

    pool_uid: str
    repair: bool = False
    synced: dict[str, str] = field(default_factory=dict)
    conflicts: list[Conflict] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    seen: dict[str, str | None] = field(default_factory=dict)

    def wants(self, desired: dict[str, Any], live: dict[str, Any] | None) -> bool:
        k = key(desired)
        action = decide(desired, live, self.pool_uid, self.repair, self.synced.get(k))
        if action is Action.CONFLICT and live is not None:
            name = desired["metadata"]["name"]
            self.conflicts.append(
                Conflict(kind=desired["kind"], name=name, owner=describe_owner(live))
            )
        if action is Action.CREATE:
            self.absent.append(k)
        self.seen[k] = resource_version(live)
        return action in (Action.CREATE, Action.APPLY, Action.REPAIR)

    def applied(self, desired: dict[str, Any], result: dict[str, Any]) -> None:
        """An apply that left the resourceVersion as it was changed nothing (a field the
        comparison cannot see as equal, e.g. a quantity the API server normalised): not a
        repair, and not compared again until the object changes."""
        k, rv = key(desired), resource_version(result)
        before = self.seen.get(k)
        if before is None:
            self.created.append(k)
        elif self.repair and before != rv:
            self.repaired.append(k)
        if rv is not None:
            self.synced[k] = rv

    def missing_deployments(self) -> list[str]:
        """Deployments found absent and not created (yet): their apply failed or never ran."""
        return [k for k in self.absent if k.startswith("Deployment ") and k not in self.created]


class Trouble(BaseModel):
    model_config = ConfigDict(frozen=True)

    reason: str
    message: str


def trouble(conflicts: list[Conflict], missing: list[str], failure: str | None) -> Trouble | None:
    """What keeps the children from being as the spec says after a pass: an object that is not
    ours, a Deployment that is missing and could not be recreated, or an apply that failed."""
    if conflicts:
        return Trouble(reason=OWNERSHIP_CONFLICT, message="; ".join(c.message for c in conflicts))
    if failure is not None and missing:
        return Trouble(
            reason=DEPLOYMENT_MISSING,
            message=f"{', '.join(missing)} missing, recreating failed: {failure}",
        )
    if failure is not None:
        return Trouble(reason=REPAIR_FAILED, message=f"repairing owned objects failed: {failure}")
    return None


def missing_trouble(name: str) -> Trouble:
    return Trouble(reason=DEPLOYMENT_MISSING, message=f"Deployment {name} missing: recreating")


def with_trouble(
    conds: list[Condition], found: Trouble | None, saved: Condition | None
) -> tuple[list[Condition], Condition | None]:
    """The conditions after a pass, and the `Ready` condition to restore once the trouble is
    gone (the reconcile's verdict, which a repair must not replace with its own `True`)."""
    ready = next((c for c in conds if c.type == conditions.READY), None)
    if found is not None:
        if ready is not None and ready.reason not in OWN_READY_REASONS:
            saved = ready
        conds = conditions.set_condition(conds, WORKLOADS_READY, False, found.reason, found.message)
        conds = conditions.set_condition(
            conds, conditions.READY, False, found.reason, found.message
        )
        return conds, saved
    conds = conditions.set_condition(
        conds, WORKLOADS_READY, True, "Present", "owned objects present and as the spec says"
    )
    if ready is not None and ready.reason in OWN_READY_REASONS:
        back = saved or Condition(
            type=conditions.READY,
            status=ConditionStatus.TRUE,
            reason="Reconciled",
            message="owned objects applied",
            last_transition_time="",
        )
        conds = conditions.set_condition(
            conds,
            conditions.READY,
            _BOOL[back.status],
            back.reason,
            back.message,
            generation=back.observed_generation,
        )
    return conds, None


_BOOL = {ConditionStatus.TRUE: True, ConditionStatus.FALSE: False, ConditionStatus.UNKNOWN: None}


@dataclass
class PoolMemory:
    synced: dict[str, str] = field(default_factory=dict)
    saved_ready: Condition | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Held by the reconcile and the repair pass while they apply: kopf runs a pool's timer
    next to its change handlers, and a pass begun with the old spec must not put back what
    the reconcile of the new one has just removed (a disabled NetworkPolicy)."""
    generation: int | None = None
    """The generation the reconcile last applied; a repair pass of another one does nothing."""

    def current(self, generation: int | None) -> bool:
        return self.generation is None or self.generation == generation


class Memory:
    """Per pool (by uid), across passes: the resourceVersions last applied and the `Ready`
    condition a trouble replaced. The operator process's memory, like events.LIMITER: after a
    restart every child is compared once and a trouble's `Ready` falls back to `Reconciled`
    until the reconcile writes its own."""

    def __init__(self) -> None:
        self._pools: dict[str, PoolMemory] = {}

    def of(self, pool_uid: str) -> PoolMemory:
        return self._pools.setdefault(pool_uid, PoolMemory())

    def forget(self, pool_uid: str) -> None:
        self._pools.pop(pool_uid, None)


MEMORY = Memory()
