"""Ordered upgrades (KMock + real broker): a new image reaches the server Deployment first and
the worker Deployment only once the servers' rollout is complete, which the test reports by
patching the Deployment status as the Deployment controller would (docs/operator.md,
"Upgrades")."""

import asyncio
from typing import Any

import pytest

from ffpool import names
from ffpool_operator.decisions import rollout
from ffpool_operator.kube.client import Kube
from tests.kmock_ext import ApiServer
from tests.operator_harness.helpers import NS, Broker, condition, obj, pool, secret
from tests.polling import eventually

pytest_plugins = ["tests.operator_harness.fixtures"]
pytestmark = [pytest.mark.rabbitmq, pytest.mark.kmock(cls=ApiServer)]
OLD, NEW = "ffpool:test", "ffpool:next"


def image(kmock: Any, component: str) -> str | None:
    dep = obj(kmock, "deployments", f"pool-{component}")
    return None if dep is None else str(dep["spec"]["template"]["spec"]["containers"][0]["image"])


async def rolled_out(kube: Kube, kmock: Any, component: str) -> None:
    """What the Deployment controller writes once every replica runs the current template."""
    dep = obj(kmock, "deployments", f"pool-{component}")
    count = int(dep["spec"].get("replicas", 1))
    status = {
        "observedGeneration": dep["metadata"]["generation"],
        "replicas": count,
        "updatedReplicas": count,
        "availableReplicas": count,
    }
    await kube.patch("Deployment", NS, f"pool-{component}", {"status": status}, sub="status")


def upgrading(kmock: Any) -> tuple[str, str] | None:
    found = condition(kmock, rollout.UPGRADING)
    return None if found is None else (found["status"], found["reason"])


async def test_servers_roll_out_before_workers(
    kube_api: Any, kube: Kube, broker: Broker, operator: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rollout, "POLL_SECONDS", 0.3)  # the reconcile looks again this often
    await kube.create(secret())
    await kube.create(pool(broker))
    await eventually(
        lambda: image(kube_api, "worker") == OLD,
        timeout=15,
        what="worker image OLD",
    )
    assert upgrading(kube_api) is None  # a new pool is no upgrade
    for component in ("server", "worker"):
        await rolled_out(kube, kube_api, component)

    await kube.patch(names.CRD_KIND, NS, "pool", {"spec": {"image": NEW}})
    await eventually(
        lambda: image(kube_api, "server") == NEW,
        timeout=15,
        what="server image NEW",
    )
    await eventually(
        lambda: upgrading(kube_api) == ("True", "ServersRollingOut"),
        timeout=15,
        what="Upgrading condition True (ServersRollingOut)",
    )
    # Watched for 2 s, several reconcile passes (every 0.3 s) while the servers' pods are not
    # all replaced: the workers keep the running image all along.
    loop = asyncio.get_running_loop()
    watch_until = loop.time() + 2.0
    while loop.time() < watch_until:
        assert image(kube_api, "worker") == OLD
        assert upgrading(kube_api) == ("True", "ServersRollingOut")
        await asyncio.sleep(0.05)
    assert (condition(kube_api, "Ready") or {}).get("status") == "True"

    await rolled_out(kube, kube_api, "server")
    await eventually(
        lambda: image(kube_api, "worker") == NEW,
        timeout=15,
        what="worker image NEW",
    )
    await eventually(
        lambda: upgrading(kube_api) == ("False", "RolledOut"),
        timeout=15,
        what="Upgrading condition False (RolledOut)",
    )
    assert (condition(kube_api, "Ready") or {}).get("status") == "True"
