"""Drift and ownership through the real operator (KMock + the real broker): edited, deleted and
foreign children (docs/operator.md, "Drift and ownership"). The repair timer runs every
drift.REPAIR_SECONDS, so each repair is awaited for a few of those."""

from typing import Any, ClassVar

import attrs
import kmock
import pytest
from kmock._internal import rendering

from ffpool import names
from ffpool_operator.decisions import drift
from tests.kmock_ext import ApiServer
from tests.operator_harness.helpers import (
    NS,
    Broker,
    condition,
    obj,
    pool,
    replicas,
    secret,
)
from tests.polling import eventually

pytest_plugins = ["tests.operator_harness.fixtures"]
pytestmark = [pytest.mark.rabbitmq, pytest.mark.kmock(cls=ApiServer)]
REPAIR_WAIT = 4 * drift.REPAIR_SECONDS


@attrs.define(kw_only=True)
class RefusingApiServer(ApiServer):
    """Refuses every server-side apply of the objects named in `refused` (an admission webhook
    or a quota saying no), so that a missing Deployment stays missing while the test looks."""

    refused: ClassVar[set[str]] = set()

    async def _apply(self, req: rendering.Request) -> None:
        if req.name in self.refused:
            raise kmock.KubernetesError(403, "Forbidden", f"{req.name}: refused by the test")
        await super()._apply(req)


def events(kube_api: Any, reason: str) -> list[dict[str, Any]]:
    found = [e for (r, _, _), e in kube_api.objects.items() if r.plural == "events"]
    return [dict(e) for e in found if e.get("reason") == reason]


def status_of(kube_api: Any, type_: str) -> tuple[str, str] | None:
    c = condition(kube_api, type_)
    return None if c is None else (c["status"], c["reason"])


async def running_pool(kube_api: Any, kube: Any, broker: Broker, **spec: Any) -> None:
    await kube.create(secret())
    await kube.create(pool(broker, **spec))
    await eventually(
        lambda: status_of(kube_api, "Ready") == ("True", "Reconciled"),
        timeout=15,
        what="Ready condition True (Reconciled)",
    )
    await eventually(
        lambda: status_of(kube_api, drift.WORKLOADS_READY) == ("True", "Present"),
        timeout=15,
        what="WorkloadsReady condition True (Present)",
    )


def image(kube_api: Any, name: str = "pool-worker") -> str:
    dep = obj(kube_api, "deployments", name)
    return str(dep["spec"]["template"]["spec"]["containers"][0]["image"])


async def rolled_out(kube: Any, name: str) -> None:
    """The status the Deployment controller (absent in KMock) writes once a rollout is done:
    the workers follow the servers' image only then (rollout.py)."""
    dep = await kube.get("Deployment", NS, name)
    n = dep["spec"].get("replicas", 1)
    status = {
        "observedGeneration": dep["metadata"]["generation"],
        "replicas": n,
        "updatedReplicas": n,
        "availableReplicas": n,
        "readyReplicas": n,
    }
    await kube.patch("Deployment", NS, name, {"status": status}, sub="status")


@pytest.mark.parametrize("name", ["pool-worker", "pool-server"])
async def test_an_edited_image_is_reverted_and_what_others_added_stays(
    kube_api: Any, kube: Any, broker: Broker, operator: None, name: str
) -> None:
    await running_pool(kube_api, kube, broker, autoscaling={"minReplicas": 2})
    await eventually(lambda: replicas(kube_api) == 2, timeout=15, what="2 worker replicas")
    await rolled_out(kube, "pool-server")
    live = await kube.get("Deployment", NS, name)
    containers = live["spec"]["template"]["spec"]["containers"]
    edit = {
        "metadata": {"labels": {"team": "video"}, "annotations": {"owner": "sre"}},
        "spec": {"template": {"spec": {"containers": [{**containers[0], "image": "evil:1"}]}}},
    }
    await kube.patch("Deployment", NS, name, edit, manager="kubectl-edit")
    assert image(kube_api, name) == "evil:1"
    await eventually(
        lambda: image(kube_api, name) == "ffpool:test",
        timeout=REPAIR_WAIT,
        what="image ffpool:test on each workload",
    )
    meta = obj(kube_api, "deployments", name)["metadata"]
    assert meta["labels"]["team"] == "video"
    assert meta["annotations"]["owner"] == "sre"
    assert replicas(kube_api) == 2  # the autoscaler's count, untouched by the repair
    repaired = await eventually(
        lambda: events(kube_api, "DriftRepaired"),
        timeout=15,
        what="DriftRepaired event",
    )
    assert f"Deployment {name} differed" in repaired[0]["message"]
    assert repaired[0]["type"] == "Warning"
    assert status_of(kube_api, "Ready") == ("True", "Reconciled")


async def test_a_deleted_service_is_recreated(
    kube_api: Any, kube: Any, broker: Broker, operator: None
) -> None:
    await running_pool(kube_api, kube, broker)
    old_uid = obj(kube_api, "services", "pool")["metadata"]["uid"]
    await kube.delete("Service", NS, "pool")
    assert obj(kube_api, "services", "pool") is None
    svc = await eventually(
        lambda: obj(kube_api, "services", "pool"), timeout=REPAIR_WAIT, what="services/pool"
    )
    assert svc["metadata"]["uid"] != old_uid
    assert svc["spec"]["selector"][names.LABEL_COMPONENT] == names.COMPONENT_SERVER
    recreated = await eventually(
        lambda: events(kube_api, "Recreated"), timeout=15, what="Recreated event"
    )
    assert recreated[0]["message"] == "Service pool was missing: recreated"


async def test_a_deleted_worker_deployment_is_recreated(
    kube_api: Any, kube: Any, broker: Broker, operator: None
) -> None:
    await running_pool(kube_api, kube, broker, autoscaling={"minReplicas": 2})
    await kube.delete("Deployment", NS, "pool-worker")
    await eventually(
        lambda: obj(kube_api, "deployments", "pool-worker"),
        timeout=REPAIR_WAIT,
        what="deployments/pool-worker",
    )
    # Recreated at the starting count, owned by the autoscaler's field manager again.
    await eventually(lambda: replicas(kube_api) == 2, timeout=15, what="2 worker replicas")
    await eventually(
        lambda: status_of(kube_api, drift.WORKLOADS_READY) == ("True", "Present"),
        timeout=15,
        what="WorkloadsReady condition True (Present)",
    )
    assert status_of(kube_api, "Ready") == ("True", "Reconciled")


@pytest.mark.kmock(cls=RefusingApiServer)
async def test_a_worker_deployment_that_cannot_come_back_is_said(
    kube_api: Any, kube: Any, broker: Broker, operator: None
) -> None:
    await running_pool(kube_api, kube, broker)
    RefusingApiServer.refused.add("pool-worker")
    try:
        await kube.delete("Deployment", NS, "pool-worker")
        missing = ("False", drift.DEPLOYMENT_MISSING)
        await eventually(
            lambda: status_of(kube_api, drift.WORKLOADS_READY) == missing,
            timeout=15,
            what="status_of(kube_api, drift.WORKLOADS_READY) == missing",
        )
        assert status_of(kube_api, "Ready") == missing
        # The autoscaler noticed at its next poll; the repair pass tried and says why it failed.
        await eventually(
            lambda: "refused by the test" in condition(kube_api, "Ready")["message"],
            timeout=REPAIR_WAIT,
            what="Ready message names the refusal",
        )
        warned = await eventually(
            lambda: events(kube_api, drift.DEPLOYMENT_MISSING),
            timeout=15,
            what="events(kube_api, drift.DEPLOYMENT_MISSING)",
        )
        assert warned[0]["type"] == "Warning"
    finally:
        RefusingApiServer.refused.clear()
    await eventually(
        lambda: obj(kube_api, "deployments", "pool-worker"),
        timeout=REPAIR_WAIT,
        what="deployments/pool-worker",
    )
    await eventually(
        lambda: status_of(kube_api, drift.WORKLOADS_READY) == ("True", "Present"),
        timeout=15,
        what="WorkloadsReady condition True (Present)",
    )
    assert status_of(kube_api, "Ready") == ("True", "Reconciled")


def foreign_service() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "pool", "namespace": NS, "labels": {"app": "legacy"}},
        "spec": {"selector": {"app": "legacy"}, "ports": [{"name": "web", "port": 80}]},
    }


async def _conflicted(kube_api: Any, kube: Any, broker: Broker) -> str:
    """A pool created over a user's Service of the same name; returns its resourceVersion."""
    await kube.create(foreign_service())
    rv = str(obj(kube_api, "services", "pool")["metadata"]["resourceVersion"])
    await kube.create(secret())
    await kube.create(pool(broker))
    await eventually(
        lambda: status_of(kube_api, "Ready") == ("False", drift.OWNERSHIP_CONFLICT),
        timeout=15,
        what="Ready condition False (drift.OWNERSHIP_CONFLICT)",
    )
    message = condition(kube_api, "Ready")["message"]
    assert "Service pool exists and is not this pool's (no owner" in message
    assert status_of(kube_api, drift.WORKLOADS_READY) == ("False", drift.OWNERSHIP_CONFLICT)
    warned = await eventually(
        lambda: events(kube_api, drift.OWNERSHIP_CONFLICT),
        timeout=15,
        what="events(kube_api, drift.OWNERSHIP_CONFLICT)",
    )
    assert warned[0]["type"] == "Warning"
    # Everything else is the pool's and is there.
    await eventually(
        lambda: obj(kube_api, "deployments", "pool-worker"),
        timeout=15,
        what="deployments/pool-worker",
    )
    assert obj(kube_api, "deployments", "pool-server") is not None
    return rv


def untouched(kube_api: Any, rv: str) -> None:
    svc = obj(kube_api, "services", "pool")
    assert svc is not None
    assert str(svc["metadata"]["resourceVersion"]) == rv
    assert not svc["metadata"].get("ownerReferences")
    assert dict(svc["spec"]["selector"]) == {"app": "legacy"}


async def test_a_foreign_service_is_left_alone_and_the_pool_takes_over_once_it_goes(
    kube_api: Any, kube: Any, broker: Broker, operator: None
) -> None:
    rv = await _conflicted(kube_api, kube, broker)
    await eventually(
        lambda: len(events(kube_api, drift.OWNERSHIP_CONFLICT)) >= 1,
        timeout=15,
        what="len(events(kube_api, drift.OWNERSHIP_CONFLICT)) >= 1",
    )
    untouched(kube_api, rv)
    await kube.delete("Service", NS, "pool")
    svc = await eventually(
        lambda: obj(kube_api, "services", "pool"), timeout=REPAIR_WAIT, what="services/pool"
    )
    assert svc["metadata"]["ownerReferences"][0]["kind"] == names.CRD_KIND
    await eventually(
        lambda: status_of(kube_api, "Ready") == ("True", "Reconciled"),
        timeout=15,
        what="Ready condition True (Reconciled)",
    )
    assert status_of(kube_api, drift.WORKLOADS_READY) == ("True", "Present")


async def test_a_foreign_service_outlives_the_pool(
    kube_api: Any, kube: Any, broker: Broker, operator: None
) -> None:
    rv = await _conflicted(kube_api, kube, broker)
    await kube.delete(names.CRD_KIND, NS, "pool")
    await eventually(
        lambda: obj(kube_api, names.CRD_PLURAL, "pool") is None,
        timeout=15,
        what="FFmpegPool pool gone",
    )
    # The pool's own children went with it (owner references); the user's Service did not.
    await eventually(
        lambda: obj(kube_api, "deployments", "pool-worker") is None,
        timeout=15,
        what="deployments/pool-worker gone",
    )
    untouched(kube_api, rv)
