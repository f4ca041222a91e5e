"""A pool moved from its volume to a bucket and back, applied against KMock (no broker, no
operator loop): the stored Deployments, ConfigMap and NetworkPolicies follow the storage form,
and nothing of the other form stays behind (a PVC volume in a bucket pool would keep its pods
Pending on a claim that may no longer exist). KMock's server-side apply is an approximation
(tests/kmock_apply.py); tests/cluster/test_server_side_apply.py runs the real one."""

from typing import Any

import pytest

from ffpool_operator.flows import reconcile_io
from ffpool_operator.kube.client import Kube
from ffpool_operator.spec.pool import PoolRef
from tests.kmock_ext import ApiServer
from tests.operator_harness.helpers import NS
from tests.operator_harness.samples import spec

pytestmark = [pytest.mark.kmock(cls=ApiServer)]
pytest_plugins = ["tests.operator_harness.fixtures"]
POOL = PoolRef(name="pool", namespace=NS, uid="uid-1")
BUCKET = {
    "s3": {
        "bucket": "ffpool-media",
        "endpoint": "http://minio.minio.svc:9000",
        "pathStyle": True,
        "credentialsSecretRef": {"name": "ffpool-s3"},
    },
    "scratchSizeLimit": "5Gi",
}
EXTRAS: dict[str, Any] = {
    "networkPolicy": {"enabled": True, "webhooks": False, "urlInputs": False},
    "tenants": {"secretRef": {"name": "ffpool-tenants", "key": "tenants.toml"}},
}


async def _pod(kube: Kube, component: str) -> dict[str, Any]:
    dep = await kube.get("Deployment", NS, f"pool-{component}")
    assert dep is not None
    pod: dict[str, Any] = dep["spec"]["template"]["spec"]
    return pod


async def _egress_ports(kube: Kube, component: str) -> set[Any]:
    policy = await kube.get("NetworkPolicy", NS, f"pool-{component}-netpol")
    assert policy is not None
    return {p["port"] for rule in policy["spec"]["egress"] for p in rule.get("ports", [])}


async def test_a_pool_moves_from_its_volume_to_a_bucket_and_back(kube_api: Any, kube: Kube) -> None:
    await reconcile_io.apply_children(kube, POOL, spec(**EXTRAS), broker_port=5672)
    for component in ("server", "worker"):
        volumes = {v["name"]: v for v in (await _pod(kube, component))["volumes"]}
        assert volumes["media"]["persistentVolumeClaim"] == {"claimName": "media"}
        assert 9000 not in await _egress_ports(kube, component)

    await reconcile_io.apply_children(kube, POOL, spec(storage=BUCKET, **EXTRAS), 5672)
    for component in ("server", "worker"):
        pod = await _pod(kube, component)
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert not [v for v in volumes.values() if "persistentVolumeClaim" in v]
        assert volumes["scratch"]["emptyDir"] == {"sizeLimit": "5Gi"}
        assert volumes["tenants"]["secret"]["secretName"] == "ffpool-tenants"
        env = {e["name"]: e for e in pod["containers"][0]["env"]}
        ref = env["S3_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "ffpool-s3", "key": "secretAccessKey"}
        assert 9000 in await _egress_ports(kube, component)
    config = await kube.get("ConfigMap", NS, "pool-config")
    assert config is not None
    assert config["data"]["STORAGE"] == "s3"
    assert config["data"]["S3_ENDPOINT_URL"] == "http://minio.minio.svc:9000"

    await reconcile_io.apply_children(kube, POOL, spec(**EXTRAS), 5672)
    for component in ("server", "worker"):
        pod = await _pod(kube, component)
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["media"] == {
            "name": "media",
            "persistentVolumeClaim": {"claimName": "media"},
        }
        assert "scratch" not in volumes
        assert "S3_SECRET_ACCESS_KEY" not in {e["name"] for e in pod["containers"][0]["env"]}
        assert 9000 not in await _egress_ports(kube, component)
    config = await kube.get("ConfigMap", NS, "pool-config")
    assert config is not None
    assert not {k for k in config["data"] if k.startswith(("S3_", "STORAGE"))}
