"""The KMock subclass behaves like the apiserver where kopf and the operator depend on it."""

from typing import Any

import pytest

from ffpool import names
from ffpool_operator.kube.client import KubeError, field_managers
from tests.kmock_ext import ApiServer

pytest_plugins = ["tests.operator_harness.fixtures"]
pytestmark = pytest.mark.kmock(cls=ApiServer)

NS = "ns1"


def cm(name: str, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": NS, **meta},
        "data": {"a": "1"},
    }


async def test_create_sets_identity_and_versions(kube: Any) -> None:
    created = await kube.create(cm("one"))
    meta = created["metadata"]
    assert meta["uid"]
    assert meta["creationTimestamp"]
    assert meta["generation"] == 1
    patched = await kube.patch("ConfigMap", NS, "one", {"data": {"a": "2"}})
    assert int(patched["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])
    with pytest.raises(KubeError) as info:
        await kube.create(cm("one"))
    assert info.value.status == 409


async def test_failed_json_patch_test_is_422(kube_api: Any, kube: Any) -> None:
    await kube.create(cm("two"))
    url = f"/api/v1/namespaces/{NS}/configmaps/two"
    ops = [{"op": "test", "path": "/metadata/resourceVersion", "value": "nope"}]
    headers = {"Content-Type": "application/json-patch+json"}
    async with kube_api.request("PATCH", url, json=ops, headers=headers) as resp:
        assert resp.status == 422


async def test_status_subresource_and_spec_generation(kube: Any) -> None:
    dep = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": NS},
        "spec": {"replicas": 1},
    }
    await kube.create(dep)
    after = await kube.patch("Deployment", NS, "d", {"status": {"readyReplicas": 1}}, sub="status")
    assert after["status"] == {"readyReplicas": 1}
    assert after["metadata"]["generation"] == 1
    after = await kube.patch("Deployment", NS, "d", {"spec": {"replicas": 3}, "status": {"x": 1}})
    assert after["metadata"]["generation"] == 2
    assert after["status"] == {"readyReplicas": 1}  # the main endpoint ignores status


async def test_finalizers_then_owner_garbage_collection(kube: Any) -> None:
    owner = await kube.create(cm("owner", finalizers=["x/y"]))
    ref = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "owner",
        "uid": owner["metadata"]["uid"],
    }
    await kube.create(cm("child", ownerReferences=[ref]))
    await kube.delete("ConfigMap", NS, "owner")
    marked = await kube.get("ConfigMap", NS, "owner")
    assert marked["metadata"]["deletionTimestamp"]
    await kube.patch("ConfigMap", NS, "owner", {"metadata": {"finalizers": None}})
    assert await kube.get("ConfigMap", NS, "owner") is None
    assert await kube.get("ConfigMap", NS, "child") is None


async def test_server_side_apply_tracks_each_managers_fields(kube: Any) -> None:
    """KMock's approximation (tests/kmock_apply.py) of what tests/cluster/ shows for real."""
    first = cm("applied")
    first["data"] = {"a": "1", "b": "2", "shared": "x"}
    created = await kube.apply(first)
    assert created["metadata"]["uid"]
    assert created["data"]["b"] == "2"
    await kube.apply({**cm("applied"), "data": {"shared": "x"}}, manager="other")
    await kube.patch("ConfigMap", NS, "applied", {"metadata": {"labels": {"by": "hand"}}})
    after = await kube.apply({**cm("applied"), "data": {"a": "1"}})
    assert after["data"] == {"a": "1", "shared": "x"}  # b dropped; shared still owned by other
    assert after["metadata"]["labels"] == {"by": "hand"}  # merge patches are never removed
    assert field_managers(after, ("data", "shared")) == {"other"}
    assert field_managers(after, ("data", "a")) == {names.FIELD_MANAGER}
