"""Applying owned objects against KMock (no broker, no operator loop): the reconcile never
writes a worker count back over the autoscaler's (docs/operator.md, "Worker count"). KMock's
server-side apply is an approximation (tests/kmock_apply.py);
tests/cluster/test_server_side_apply.py runs the real one."""

from typing import Any

import pytest

from ffpool import names
from ffpool_operator.flows import reconcile_io
from ffpool_operator.kube import access
from ffpool_operator.kube.client import Kube, field_managers
from ffpool_operator.spec.pool import PoolRef
from tests.kmock_ext import ApiServer
from tests.operator_harness.helpers import NS, replicas
from tests.operator_harness.samples import spec

pytest_plugins = ["tests.operator_harness.fixtures"]
pytestmark = [pytest.mark.kmock(cls=ApiServer)]
POOL = PoolRef(name="pool", namespace=NS, uid="uid-1")


class RacingKube(Kube):
    """Scales the worker Deployment (as the autoscaling daemon would) just before each apply
    of it: a reconcile that read the count earlier and wrote it back would undo the scale."""

    def __init__(self, cfg: Any, scale_to: int) -> None:
        super().__init__(cfg)
        self.scale_to = scale_to

    async def apply(self, manifest: dict[str, Any], manager: str | None = None) -> dict[str, Any]:
        if manifest["kind"] == "Deployment" and manifest["metadata"]["name"] == "pool-worker":
            await self.patch("Deployment", NS, "pool-worker", {"spec": {"replicas": self.scale_to}})
        return await super().apply(manifest, manager)


@pytest.mark.parametrize("autoscaling", [{"minReplicas": 1}, {"enabled": False}])
async def test_reconcile_keeps_a_worker_count_set_meanwhile(
    kube_api: Any, kube: Kube, autoscaling: dict[str, Any]
) -> None:
    s = spec(autoscaling=autoscaling)
    await reconcile_io.apply_children(kube, POOL, s)
    assert replicas(kube_api) == 1  # set at creation
    racing = RacingKube(access.load(), scale_to=7)  # configured as the `kube` fixture is
    try:
        changed = spec(autoscaling=autoscaling, env={"JOB_TIMEOUT_SECONDS": "60"})
        await reconcile_io.apply_children(racing, POOL, changed)
    finally:
        await racing.close()
    assert replicas(kube_api) == 7
    worker = await kube.get("Deployment", NS, "pool-worker")
    assert worker is not None
    labels = worker["metadata"]["labels"]
    assert labels[names.LABEL_POOL] == "pool"
    # The count belongs to the daemon's field manager alone (server-side apply, KMock's version).
    assert field_managers(worker, ("spec", "replicas")) == {names.FIELD_MANAGER_AUTOSCALER}
    assert field_managers(worker, ("spec", "template")) == {names.FIELD_MANAGER}
