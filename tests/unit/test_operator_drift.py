"""Drift and ownership decisions, pure (ffpool_operator.decisions.drift and
ffpool_operator.decisions.ownership)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ffpool import names
from ffpool_operator.decisions import conditions, drift
from ffpool_operator.decisions.drift import Action, ChildPlan
from ffpool_operator.decisions.ownership import Owner, describe_owner, owner_of
from ffpool_operator.manifests import deployments, objects
from ffpool_operator.spec.pool import Condition, ConditionStatus, PoolRef
from tests.operator_harness.samples import spec

POOL = PoolRef(name="pool", namespace="ns", uid="uid-1")


def live(manifest: dict[str, Any], rv: str = "7", **meta: Any) -> dict[str, Any]:
    """The manifest as the API server would hold it: defaults and foreign metadata added."""
    out = copy.deepcopy(manifest)
    out["metadata"] |= {"resourceVersion": rv, "uid": "child", **meta}
    out["metadata"]["labels"] = {**out["metadata"]["labels"], "team": "video"}
    out["metadata"]["annotations"] = {"note": "added by someone else"}
    out.setdefault("status", {})["replicas"] = 3
    return out


def worker() -> dict[str, Any]:
    return deployments.worker_deployment(POOL, spec())


def foreign(manifest: dict[str, Any], **meta: Any) -> dict[str, Any]:
    """The same object made by someone else: no reference to the pool (or `meta`'s own)."""
    mine = copy.deepcopy(manifest)
    del mine["metadata"]["ownerReferences"]
    return live(mine, **meta)


def test_ownership_needs_a_reference_with_the_pools_uid() -> None:
    svc = objects.service(POOL, spec())
    assert owner_of(None, POOL.uid) is Owner.ABSENT
    assert owner_of(live(svc), POOL.uid) is Owner.OWN
    assert owner_of(foreign(svc), POOL.uid) is Owner.FOREIGN
    # A pool of the same name deleted and recreated: the old children are not the new pool's.
    assert owner_of(live(svc), "uid-2") is Owner.FOREIGN
    # An unknown pool uid never matches an object's reference without one.
    stray = foreign(svc, ownerReferences=[{"kind": "X", "name": "x"}])
    assert owner_of(stray, "") is Owner.FOREIGN


def test_the_owner_is_named_for_the_user() -> None:
    svc = objects.service(POOL, spec())
    helm = foreign(svc, managedFields=[{"manager": "helm"}, {"manager": "kubectl-edit"}])
    assert describe_owner(helm) == "no owner, written by helm, kubectl-edit"
    refs = [
        {"kind": "Foo", "name": "a", "uid": "1"},
        {"kind": "Bar", "name": "b", "uid": "2", "controller": True},
    ]
    assert describe_owner(foreign(svc, ownerReferences=refs)) == "owned by Bar/b (uid 2)"
    assert describe_owner(foreign(svc)) == "no owner"


def test_fields_others_add_are_no_drift_but_an_edited_image_is() -> None:
    desired = worker()
    seen = live(desired)
    seen["spec"]["replicas"] = 9  # the autoscaler's
    seen["spec"]["template"]["spec"]["containers"][0]["terminationMessagePath"] = "/dev/log"
    assert drift.covers(desired, seen)
    seen["spec"]["template"]["spec"]["containers"][0]["image"] = "evil:latest"
    assert not drift.covers(desired, seen)


def test_a_removed_label_or_list_element_is_drift() -> None:
    desired = objects.service(POOL, spec())
    seen = live(desired)
    del seen["metadata"]["labels"][names.LABEL_POOL]
    assert not drift.covers(desired, seen)
    seen = live(desired)
    seen["spec"]["ports"] = seen["spec"]["ports"][:-1]
    assert not drift.covers(desired, seen)
    assert not drift.covers({"a": [1]}, {"a": {"0": 1}})


def test_decide() -> None:
    desired = worker()
    edited = live(desired, rv="8")
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = "other"
    cases = [
        (None, False, None, Action.CREATE),
        (None, True, None, Action.CREATE),
        (foreign(desired), False, None, Action.CONFLICT),
        (foreign(desired), True, None, Action.CONFLICT),
        (live(desired), False, "7", Action.APPLY),  # a reconcile applies its own always
        (live(desired), True, None, Action.KEEP),
        (edited, True, None, Action.REPAIR),
        (edited, True, "7", Action.REPAIR),  # changed since our last apply
        (edited, True, "8", Action.KEEP),  # our own apply left it so: not compared again
    ]
    for seen, repair, synced, expected in cases:
        assert drift.decide(desired, seen, POOL.uid, repair, synced) is expected, (repair, synced)


def test_a_plan_records_conflicts_creations_and_real_repairs() -> None:
    s = spec()
    svc, cm, dep = objects.service(POOL, s), objects.config_map(POOL, s), worker()
    plan = ChildPlan(pool_uid=POOL.uid, repair=True)
    assert not plan.wants(svc, foreign(svc))
    assert [c.kind + " " + c.name for c in plan.conflicts] == ["Service pool"]
    assert "not this pool's (no owner)" in plan.conflicts[0].message
    assert plan.wants(dep, None)
    assert plan.missing_deployments() == ["Deployment pool-worker"]
    plan.applied(dep, live(dep, rv="20"))
    assert plan.created == ["Deployment pool-worker"]
    assert plan.missing_deployments() == []
    edited = live(cm, rv="30")
    edited["data"]["BACKEND"] = "memory"
    assert plan.wants(cm, edited)
    plan.applied(cm, live(cm, rv="30"))  # the apply changed nothing: no repair to report
    assert plan.repaired == []
    assert plan.synced == {"Deployment pool-worker": "20", "ConfigMap pool-config": "30"}
    assert plan.wants(cm, edited) is False  # unchanged since: not compared, not applied
    plan.applied(cm, live(cm, rv="31"))
    assert plan.repaired == ["ConfigMap pool-config"]


def test_a_reconcile_plan_reports_no_repairs() -> None:
    cm = objects.config_map(POOL, spec())
    plan = ChildPlan(pool_uid=POOL.uid)
    assert plan.wants(cm, live(cm, rv="1"))
    plan.applied(cm, live(cm, rv="2"))
    assert plan.repaired == []
    assert plan.created == []


def test_trouble_orders_conflicts_then_missing_then_failures() -> None:
    svc = objects.service(POOL, spec())
    plan = ChildPlan(pool_uid=POOL.uid, repair=True)
    plan.wants(svc, foreign(svc))
    found = drift.trouble(plan.conflicts, ["Deployment pool-worker"], "HTTP 500")
    assert found is not None
    assert found.reason == drift.OWNERSHIP_CONFLICT
    found = drift.trouble([], ["Deployment pool-worker"], "HTTP 403")
    assert found is not None
    assert found.reason == drift.DEPLOYMENT_MISSING
    assert "pool-worker missing, recreating failed: HTTP 403" in found.message
    found = drift.trouble([], [], "HTTP 500")
    assert found is not None
    assert found.reason == drift.REPAIR_FAILED
    assert drift.trouble([], [], None) is None


def _ready(conds: list[Condition]) -> tuple[ConditionStatus, str]:
    c = next(c for c in conds if c.type == conditions.READY)
    return c.status, c.reason


@pytest.mark.parametrize("reconciled", [(True, "Reconciled"), (False, "BrokerUnavailable")])
def test_a_trouble_replaces_ready_and_gives_the_reconciles_verdict_back(
    reconciled: tuple[bool, str],
) -> None:
    status, reason = reconciled
    conds = conditions.set_condition([], conditions.READY, status, reason, "x", generation=4)
    conds, saved = drift.with_trouble(conds, drift.missing_trouble("pool-worker"), None)
    assert _ready(conds) == (ConditionStatus.FALSE, drift.DEPLOYMENT_MISSING)
    workloads_ready = next(c for c in conds if c.type == drift.WORKLOADS_READY)
    assert workloads_ready.status is ConditionStatus.FALSE
    # A second trouble in a row keeps the reconcile's verdict, not the first trouble's.
    conds, saved = drift.with_trouble(conds, drift.missing_trouble("pool-worker"), saved)
    assert saved is not None
    assert saved.reason == reason
    conds, saved = drift.with_trouble(conds, None, saved)
    assert saved is None
    expected = ConditionStatus.TRUE if status else ConditionStatus.FALSE
    assert _ready(conds) == (expected, reason)
    workloads_ready = next(c for c in conds if c.type == drift.WORKLOADS_READY)
    assert workloads_ready.status is ConditionStatus.TRUE


def test_a_healthy_pass_leaves_the_reconciles_ready_alone() -> None:
    conds = conditions.set_condition([], conditions.READY, False, "TokensKeyMissing", "x")
    conds, saved = drift.with_trouble(conds, None, None)
    assert _ready(conds) == (ConditionStatus.FALSE, "TokensKeyMissing")
    assert saved is None
    # Without a saved verdict (operator restarted meanwhile) a trouble's Ready falls back.
    conds = conditions.set_condition([], conditions.READY, False, drift.OWNERSHIP_CONFLICT, "x")
    conds, _ = drift.with_trouble(conds, None, None)
    assert _ready(conds) == (ConditionStatus.TRUE, "Reconciled")
