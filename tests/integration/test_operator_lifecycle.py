"""The real operator against KMock and the real broker: create → topology and children,
spec change → children patched, delete → children gone and queue kept."""

from typing import Any

import pytest

from ffpool import names
from tests.kmock_ext import ApiServer
from tests.operator_harness.helpers import (
    NS,
    Broker,
    condition,
    eventually,
    obj,
    pool,
    secret,
)  # fmt: skip

pytest_plugins = ["tests.operator_harness.fixtures"]
pytestmark = [pytest.mark.rabbitmq, pytest.mark.kmock(cls=ApiServer)]

DEPLOY = "deployments"
POOLS = names.CRD_PLURAL


async def test_pool_lifecycle(kube_api: Any, kube: Any, broker: Broker, operator: None) -> None:
    await kube.create(secret())
    created = await kube.create(
        pool(broker, env={"JOB_TIMEOUT_SECONDS": "60"},
             workers={"scheduling": {"nodeSelector": {"disk": "ssd"}}})
    )  # fmt: skip
    uid = created["metadata"]["uid"]

    worker = await eventually(lambda: obj(kube_api, DEPLOY, "pool-worker"))
    for resource, name in [(DEPLOY, "pool-server"), ("services", "pool"),
                           ("configmaps", "pool-config")]:  # fmt: skip
        child = await eventually(lambda r=resource, n=name: obj(kube_api, r, n))
        assert child["metadata"]["ownerReferences"][0]["uid"] == uid
    config = obj(kube_api, "configmaps", "pool-config")
    assert config["data"]["JOB_QUEUE"] == broker.topology["jobQueue"]
    assert config["data"]["JOB_ROUTING_KEY"] == broker.topology["routingKey"]
    assert config["data"]["JOB_TIMEOUT_SECONDS"] == "60"
    assert config["data"]["BACKEND"] == "rabbitmq"
    assert worker["spec"]["replicas"] == 0  # autoscaling from zero by default

    queue = await broker.api.queue("/", broker.topology["jobQueue"])
    assert queue is not None
    assert queue.arguments["x-dead-letter-routing-key"] == broker.topology["dlqQueue"]
    ready = await eventually(lambda: condition(kube_api, "TopologyReady"))
    assert ready["status"] == "True"
    await eventually(lambda: (condition(kube_api, "Ready") or {}).get("status") == "True")

    # Spec change → children patched (env and the pod template's config hash).
    def config_hash() -> str:
        worker = obj(kube_api, DEPLOY, "pool-worker")
        return str(worker["spec"]["template"]["metadata"]["annotations"]["ffpool.dev/config-hash"])

    old_hash = config_hash()
    await kube.patch(names.CRD_KIND, NS, "pool", {"spec": {"workers": {"jobsPerWorker": 3}}})
    await eventually(
        lambda: obj(kube_api, "configmaps", "pool-config")["data"]["MAX_CONCURRENT_JOBS"] == "3"
    )
    await eventually(lambda: config_hash() != old_hash)  # pods roll with the new settings

    # Keys dropped from the spec leave the children (merge patches alone never remove them).
    def pod_spec() -> dict[str, Any]:
        return dict(obj(kube_api, DEPLOY, "pool-worker")["spec"]["template"]["spec"])

    assert pod_spec()["nodeSelector"] == {"disk": "ssd"}
    dropped = {"env": {"JOB_TIMEOUT_SECONDS": None}, "workers": {"scheduling": None}}
    await kube.patch(names.CRD_KIND, NS, "pool", {"spec": dropped})
    await eventually(
        lambda: "JOB_TIMEOUT_SECONDS" not in obj(kube_api, "configmaps", "pool-config")["data"]
    )
    await eventually(lambda: "nodeSelector" not in pod_spec())
    assert obj(kube_api, "configmaps", "pool-config")["data"]["MAX_CONCURRENT_JOBS"] == "3"

    # Delete → owned objects garbage-collected, queue kept (default Retain).
    await kube.delete(names.CRD_KIND, NS, "pool")
    await eventually(lambda: obj(kube_api, POOLS, "pool") is None)
    await eventually(lambda: obj(kube_api, DEPLOY, "pool-worker") is None)
    assert obj(kube_api, "configmaps", "pool-config") is None
    assert await broker.api.queue("/", broker.topology["jobQueue"]) is not None
