"""The operator's server-side apply against the real API server: its real client (kube/client.py)
and its real reconcile (reconcile_io.apply_children, the builders in objects.py and
deployments.py), as the cluster admin. What KMock only approximates (tests/kmock_apply.py) is
shown here: fields the operator stops setting go, fields other managers set stay, the worker
count belongs to the autoscaler's field manager, and `metadata.managedFields` says so
(docs/operator.md)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from ffpool import names
from ffpool_operator.decisions.drift import ChildPlan
from ffpool_operator.flows import autoscale_io, reconcile_io
from ffpool_operator.kube import access
from ffpool_operator.kube.client import Kube, KubeError, field_managers
from ffpool_operator.manifests import deployments, objects
from ffpool_operator.spec.pool import PoolRef, PoolSpec
from tests.cluster.controlplane import ControlPlane

pytestmark = [pytest.mark.cluster]
NS = "ffpool-ssa"
POOL = PoolRef(name="pool", namespace=NS, uid="00000000-0000-0000-0000-000000000000")
WORKER, SERVER, CONFIG = "pool-worker", "pool-server", "pool-config"
REPLICAS = ("spec", "replicas")


def ownerless(manifest: dict[str, Any]) -> dict[str, Any]:
    """No owner references: no FFmpegPool exists here (an operator running elsewhere in the
    session would reconcile one), and the garbage collector deletes objects whose owner is
    missing. Ownership of fields, not of objects, is under test."""
    meta = {k: v for k, v in manifest["metadata"].items() if k != "ownerReferences"}
    return {**manifest, "metadata": meta}


class OwnerlessKube(Kube):
    """The real client, applying without owner references; what it reads back names the pool
    as owner, so the reconcile's ownership check (ownership.py) takes the objects as the pool's."""

    async def apply(self, manifest: dict[str, Any], manager: str | None = None) -> dict[str, Any]:
        return await super().apply(ownerless(manifest), manager)

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        found = await super().get(kind, namespace, name)
        if found is not None:
            found["metadata"]["ownerReferences"] = [{"uid": POOL.uid, "kind": names.CRD_KIND}]
        return found


def spec(**overrides: Any) -> PoolSpec:
    base = {
        "image": "ffpool:test",
        "rabbitmq": {"secretName": "rmq"},
        "auth": {"allowAnonymous": True},
    }
    return PoolSpec.model_validate({**base, "storage": {"claimName": "media"}, **overrides})


@pytest.fixture(scope="module")
def namespace(control_plane: ControlPlane) -> Iterator[str]:
    control_plane.kubectl("create", "namespace", NS)
    yield NS
    control_plane.kubectl("delete", "namespace", NS, "--wait=false")


@pytest.fixture
async def kube(
    control_plane: ControlPlane, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Kube]:
    monkeypatch.setenv("KUBECONFIG", str(control_plane.admin_kubeconfig))
    client = OwnerlessKube(access.load())  # how the operator loads its config outside a pod
    yield client
    await client.close()


def live(plane: ControlPlane, kind: str, name: str) -> dict[str, Any]:
    shown = plane.kubectl("get", kind, name, "-n", NS, "-o", "json", "--show-managed-fields")
    out: dict[str, Any] = json.loads(shown)
    return out


def managers(obj: dict[str, Any]) -> dict[str, str]:
    return {e["manager"]: e["operation"] for e in obj["metadata"]["managedFields"]}


async def test_fields_dropped_from_the_spec_go_and_other_managers_fields_stay(
    control_plane: ControlPlane, kube: Kube
) -> None:
    first = spec(
        env={"JOB_TIMEOUT_SECONDS": "60"},
        workers={"scheduling": {"nodeSelector": {"disk": "ssd"}}},
        servers={"service": {"annotations": {"example.com/team": "video"}}},
        autoscaling={"minReplicas": 2},
    )
    await reconcile_io.apply_children(kube, POOL, first)
    worker = live(control_plane, "deployment", WORKER)
    assert worker["spec"]["replicas"] == 2  # created with the initial count, not the default 1
    assert worker["spec"]["template"]["spec"]["nodeSelector"] == {"disk": "ssd"}

    # Other managers: a user's label and annotation, and `kubectl scale` of the workers.
    control_plane.kubectl("label", "deployment", WORKER, "-n", NS, "example.com/owner=alice")
    control_plane.kubectl("annotate", "service", "pool", "-n", NS, "example.com/note=keep")
    control_plane.kubectl("scale", "deployment", WORKER, "-n", NS, "--replicas=5")

    await reconcile_io.apply_children(kube, POOL, spec(autoscaling={"minReplicas": 2}))
    worker = live(control_plane, "deployment", WORKER)
    assert "nodeSelector" not in worker["spec"]["template"]["spec"]
    assert worker["metadata"]["labels"]["example.com/owner"] == "alice"
    assert worker["spec"]["replicas"] == 5  # the reconcile's apply leaves the count alone
    assert "JOB_TIMEOUT_SECONDS" not in live(control_plane, "configmap", CONFIG)["data"]
    annotations = live(control_plane, "service", "pool")["metadata"]["annotations"]
    assert annotations == {"example.com/note": "keep"}


async def test_the_worker_count_belongs_to_the_autoscalers_field_manager(
    control_plane: ControlPlane, kube: Kube
) -> None:
    s = spec(autoscaling={"minReplicas": 1})
    await reconcile_io.apply_children(kube, POOL, s)
    control_plane.kubectl("scale", "deployment", WORKER, "-n", NS, "--replicas=4")
    await autoscale_io.write_replicas(kube, POOL, 3)  # force: takes the count back from kubectl
    await reconcile_io.apply_children(kube, POOL, s)

    worker = live(control_plane, "deployment", WORKER)
    assert worker["spec"]["replicas"] == 3
    assert field_managers(worker, REPLICAS) == {names.FIELD_MANAGER_AUTOSCALER}
    assert field_managers(worker, ("spec", "template")) == {names.FIELD_MANAGER}
    assert managers(worker)[names.FIELD_MANAGER] == "Apply"
    assert managers(worker)[names.FIELD_MANAGER_AUTOSCALER] == "Apply"
    [mine] = [
        e
        for e in worker["metadata"]["managedFields"]
        if e["manager"] == names.FIELD_MANAGER_AUTOSCALER
    ]
    assert mine["fieldsV1"] == {"f:spec": {"f:replicas": {}}}


async def test_a_handover_cut_short_is_finished_by_the_next_reconcile(
    control_plane: ControlPlane, kube: Kube
) -> None:
    """An operator stopped between creating the workers (its apply owns the count) and the
    autoscaler's first apply: the next reconcile hands the count over instead of dropping it
    (which would reset it to Kubernetes' default of 1)."""
    control_plane.kubectl("delete", "deployment", WORKER, "-n", NS, "--ignore-not-found")
    s = spec(autoscaling={"minReplicas": 3})
    await kube.apply(deployments.worker_deployment(POOL, s, 3))
    assert field_managers(live(control_plane, "deployment", WORKER), REPLICAS) == {
        names.FIELD_MANAGER
    }
    await reconcile_io.apply_workers(kube, POOL, s, ChildPlan(pool_uid=POOL.uid))
    worker = live(control_plane, "deployment", WORKER)
    assert worker["spec"]["replicas"] == 3
    assert field_managers(worker, REPLICAS) == {names.FIELD_MANAGER_AUTOSCALER}


async def test_force_takes_back_what_the_operator_owns(
    control_plane: ControlPlane, kube: Kube
) -> None:
    """The server count comes from the pool's spec: `kubectl scale` of the server Deployment
    lasts until the next reconcile, which applies with force instead of failing on conflict."""
    s = spec(servers={"replicas": 2})
    await reconcile_io.apply_children(kube, POOL, s)
    control_plane.kubectl("scale", "deployment", SERVER, "-n", NS, "--replicas=6")
    await reconcile_io.apply_children(kube, POOL, s)
    server = live(control_plane, "deployment", SERVER)
    assert server["spec"]["replicas"] == 2
    assert field_managers(server, REPLICAS) == {names.FIELD_MANAGER}


async def test_apply_needs_patch_and_create_but_no_get(
    control_plane: ControlPlane, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chart's verbs for what the operator applies (tests/unit/test_chart_rbac.py): an apply
    is a PATCH, and one that creates the object is authorized as `create` as well; no `get`
    first. The client runs as a ServiceAccount with a TokenRequest token, as in a pod."""
    account = "apply-only"
    control_plane.kubectl("create", "serviceaccount", account, "-n", NS)
    control_plane.kubectl(
        "create", "role", account, "-n", NS, "--verb=patch,create", "--resource=configmaps"
    )
    control_plane.kubectl(
        "create",
        "rolebinding",
        account,
        "-n",
        NS,
        f"--role={account}",
        f"--serviceaccount={NS}:{account}",
    )
    token = control_plane.kubectl("create", "token", account, "-n", NS).strip()
    monkeypatch.setenv("KUBECONFIG", str(control_plane.kubeconfig(account, token)))
    client = Kube(access.load())
    pool = PoolRef(name="rbac", namespace=NS, uid=POOL.uid)
    try:
        created = await client.apply(ownerless(objects.config_map(pool, spec())))
        assert created["data"]["MAX_CONCURRENT_JOBS"] == "1"
        two = spec(workers={"jobsPerWorker": 2})
        changed = await client.apply(ownerless(objects.config_map(pool, two)))
        assert changed["data"]["MAX_CONCURRENT_JOBS"] == "2"
        with pytest.raises(KubeError) as denied:
            await client.get("ConfigMap", NS, objects.config_map_name(pool))
        assert denied.value.status == 403
    finally:
        await client.close()


async def test_a_pool_moves_from_its_volume_to_a_bucket(
    control_plane: ControlPlane, kube: Kube
) -> None:
    """The `media` volume changes source (PVC → emptyDir) in one apply: the API server refuses a
    volume with two sources, so the old one must go with the operator's field ownership."""
    await reconcile_io.apply_children(kube, POOL, spec())
    bucket = {"s3": {"bucket": "ffpool-media"}, "scratchSizeLimit": "2Gi"}
    await reconcile_io.apply_children(kube, POOL, spec(storage=bucket))
    for name in (SERVER, WORKER):
        pod = live(control_plane, "deployment", name)["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert "persistentVolumeClaim" not in volumes["media"]
        assert volumes["scratch"]["emptyDir"] == {"sizeLimit": "2Gi"}
    assert live(control_plane, "configmap", CONFIG)["data"]["STORAGE"] == "s3"
    await reconcile_io.apply_children(kube, POOL, spec())
    for name in (SERVER, WORKER):
        pod = live(control_plane, "deployment", name)["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["media"]["persistentVolumeClaim"] == {"claimName": "media"}
        assert "emptyDir" not in volumes["media"]
        assert "scratch" not in volumes
