"""PodDisruptionBudgets with the real operator (KMock + real broker): the servers' created by
default, both patched when the spec changes, removed when disabled; a foreign one is left
alone."""

from typing import Any

import pytest

from ffpool import names
from tests.kmock_ext import ApiServer
from tests.operator_harness.helpers import NS, Broker, obj, pool, secret, status_when
from tests.polling import eventually

pytest_plugins = ["tests.operator_harness.fixtures"]
pytestmark = [pytest.mark.rabbitmq, pytest.mark.kmock(cls=ApiServer)]
SERVER_PDB, WORKER_PDB = "pool-server-pdb", "pool-worker-pdb"


def pdb(kmock: Any, name: str) -> dict[str, Any] | None:
    found = obj(kmock, "poddisruptionbudgets", name)
    return None if found is None else dict(found)


def limits(kmock: Any, name: str) -> dict[str, Any] | None:
    found = pdb(kmock, name)
    if found is None:
        return None
    skip = ("selector", "unhealthyPodEvictionPolicy")
    return {k: v for k, v in dict(found["spec"]).items() if k not in skip}


async def respec(kube: Any, spec: dict[str, Any]) -> None:
    await kube.patch(names.CRD_KIND, NS, "pool", {"spec": spec})


async def test_budgets_follow_the_spec(
    kube_api: Any, kube: Any, broker: Broker, operator: None
) -> None:
    await kube.create(secret())
    await kube.create(pool(broker))
    server = await eventually(lambda: pdb(kube_api, SERVER_PDB), timeout=15, what=SERVER_PDB)
    assert server["apiVersion"] == "policy/v1"
    assert dict(server["spec"]["selector"]["matchLabels"]) == {
        names.LABEL_POOL: "pool",
        names.LABEL_COMPONENT: names.COMPONENT_SERVER,
    }
    assert limits(kube_api, SERVER_PDB) == {"maxUnavailable": 1}
    # Not ready pods may always be evicted: a crash-looping pod must not block a drain.
    assert server["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    [owner] = server["metadata"]["ownerReferences"]
    assert owner["kind"] == names.CRD_KIND
    assert pdb(kube_api, WORKER_PDB) is None  # off by default

    # minAvailable instead: the apply drops maxUnavailable (server-side apply).
    await respec(
        kube,
        {
            "servers": {"podDisruptionBudget": {"minAvailable": "50%"}},
            "workers": {"podDisruptionBudget": {"enabled": True, "maxUnavailable": 2}},
        },
    )
    await eventually(
        lambda: limits(kube_api, SERVER_PDB) == {"minAvailable": "50%"},
        timeout=15,
        what="server budget patched to minAvailable 50%",
    )
    await eventually(
        lambda: limits(kube_api, WORKER_PDB) == {"maxUnavailable": 2},
        timeout=15,
        what="worker budget created",
    )

    await respec(
        kube,
        {
            "servers": {"podDisruptionBudget": {"enabled": False, "minAvailable": None}},
            "workers": {"podDisruptionBudget": {"enabled": False}},
        },
    )
    await eventually(lambda: pdb(kube_api, SERVER_PDB) is None, timeout=15, what="server gone")
    await eventually(lambda: pdb(kube_api, WORKER_PDB) is None, timeout=15, what="worker gone")


async def test_a_foreign_budget_is_left_alone(
    kube_api: Any, kube: Any, broker: Broker, operator: None
) -> None:
    foreign = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": WORKER_PDB, "namespace": NS},
        "spec": {"maxUnavailable": 5, "selector": {"matchLabels": {"app": "other"}}},
    }
    await kube.create(foreign)
    await kube.create(secret())
    await kube.create(pool(broker))  # workers' budget off: the foreign one is not the pool's
    await eventually(lambda: pdb(kube_api, SERVER_PDB), timeout=15, what=SERVER_PDB)
    await eventually(
        lambda: status_when(kube_api, lambda s: s["observedGeneration"] == 1),
        timeout=15,
        what="reconciled",
    )
    assert limits(kube_api, WORKER_PDB) == {"maxUnavailable": 5}
