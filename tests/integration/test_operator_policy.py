"""A site policy that overrides the pool's queue limits, against the real broker (KMock + the
real operator): `TopologyReady=False` with reason `PolicyOverrides` naming the policy and the
fields, a Warning event, and both cleared once the policy is gone."""

import asyncio
from typing import Any

import pytest

from ffpool.topology import DELIVERY_LIMIT_SLACK
from ffpool_operator.broker.management import segment
from tests.integration.test_operator_events import pool_events
from tests.kmock_ext import ApiServer
from tests.operator_harness.helpers import Broker, condition, pool, secret
from tests.polling import eventually

pytest_plugins = ["tests.operator_harness.fixtures"]
pytestmark = [pytest.mark.rabbitmq, pytest.mark.kmock(cls=ApiServer)]


def topology(kube_api: Any) -> tuple[str, str, str] | None:
    cond = condition(kube_api, "TopologyReady")
    return None if cond is None else (cond["status"], cond["reason"], cond["message"])


async def ready_pool(kube: Any, kube_api: Any, broker: Broker) -> None:
    """The pool and its broker Secret, once its topology is declared."""
    await kube.create(secret())
    await kube.create(pool(broker))
    await eventually(
        lambda: (topology(kube_api) or ("",))[0] == "True",
        timeout=15,
        what="TopologyReady condition True",
    )


async def overridden(kube_api: Any, timeout: float) -> tuple[str, str, str]:
    """The TopologyReady condition once a policy is reported overriding the pool's."""
    found: tuple[str, str, str] = await eventually(
        lambda: (t := topology(kube_api)) and t[1] == "PolicyOverrides" and t,
        timeout=timeout,
        what="TopologyReady reason PolicyOverrides",
    )
    return found


async def test_a_site_policy_lowering_max_length_is_reported_until_removed(
    kube_api: Any, kube: Any, broker: Broker, operator: None
) -> None:
    queue = broker.topology["jobQueue"]
    site = f"{broker.prefix}-site"
    path = f"/policies/{segment('/')}/{segment(site)}"
    await ready_pool(kube, kube_api, broker)
    # Higher priority than the pool's policy (0), so RabbitMQ applies it instead.
    body = {
        "pattern": f"^{queue}$",
        "definition": {"max-length": 5},
        "priority": 1,
        "apply-to": "queues",
    }
    assert await broker.raw("PUT", path, body) in (201, 204)
    try:
        found = await overridden(kube_api, timeout=15)
        assert found[0] == "False"
        assert f"policy {site} sets max-length 10000 → 5" in found[2]
        warning = await eventually(
            lambda: pool_events(kube_api, "PolicyOverrides"),
            timeout=15,
            what="PolicyOverrides event",
        )
        assert warning[0]["type"] == "Warning"
        assert site in warning[0]["message"]
        assert (condition(kube_api, "Ready") or {}).get("status") == "True"  # jobs still flow
    finally:
        await broker.raw("DELETE", path)
    await eventually(
        lambda: (topology(kube_api) or ("", ""))[:2] == ("True", "Declared"),
        timeout=15,
        what="TopologyReady condition True (Declared)",
    )

    def declared() -> list[dict[str, Any]]:
        found = pool_events(kube_api, "Declared")
        return [e for e in found if e["message"].startswith("TopologyReady=True")]

    back = await eventually(
        lambda: declared()[1:], timeout=15, what="declared()[1:]"
    )  # the first is the pool's creation
    assert back[0]["type"] == "Normal"


async def test_a_higher_site_limit_is_not_an_override(
    kube_api: Any, kube: Any, broker: Broker, operator: None
) -> None:
    """RabbitMQ keeps the lower of policy and argument: a site policy allowing more changes
    nothing the pool promises."""
    queue = broker.topology["jobQueue"]
    path = f"/policies/{segment('/')}/{segment(broker.prefix + '-site')}"
    body = {
        "pattern": f"^{queue}$",
        "definition": {"max-length": 50_000},
        "priority": 1,
        "apply-to": "queues",
    }
    assert await broker.raw("PUT", path, body) in (201, 204)
    try:
        await ready_pool(kube, kube_api, broker)

        async def site_in_force() -> bool:
            info = await broker.api.queue("/", queue)  # the broker's statistics lag seconds
            return info is not None and info.policy == broker.prefix + "-site"

        await eventually(site_in_force, timeout=15, what="site in force")
        # Three drift checks (driftCheckSeconds: 1) see the site policy in force and keep True.
        deadline = asyncio.get_running_loop().time() + 3.0
        while asyncio.get_running_loop().time() < deadline:
            assert (topology(kube_api) or ("",))[:2] == ("True", "Declared")
            await asyncio.sleep(0.1)
    finally:
        await broker.raw("DELETE", path)


async def test_an_operator_policy_beside_the_pools_own_is_reported(
    kube_api: Any, kube: Any, broker: Broker, operator: None
) -> None:
    """An operator policy applies together with the pool's policy (both in force): RabbitMQ
    keeps its lower limit, which the pool's status must say."""
    queue, limits = broker.topology["jobQueue"], f"{broker.prefix}-limits"
    path = f"/operator-policies/{segment('/')}/{segment(limits)}"
    await ready_pool(kube, kube_api, broker)
    body = {
        "pattern": f"^{queue}$",
        "definition": {"message-ttl": 60_000},
        "priority": 0,
        "apply-to": "queues",
    }
    assert await broker.raw("PUT", path, body) in (201, 204)
    try:
        found = await overridden(kube_api, timeout=20)
        assert f"policy {limits} sets message-ttl 3600000 → 60000" in found[2]
    finally:
        await broker.raw("DELETE", path)
    await eventually(
        lambda: (topology(kube_api) or ("", ""))[:2] == ("True", "Declared"),
        timeout=20,
        what="TopologyReady condition True (Declared)",
    )


async def test_a_site_policy_lowering_a_quorum_delivery_limit_is_reported(
    kube_api: Any, kube: Any, broker: Broker, operator: None
) -> None:
    """Quorum bands: the lower delivery limit of argument and policy is in force, so a site
    policy lowering it changes how often a job may run."""
    queue = broker.topology["jobQueue"]
    site = f"{broker.prefix}-site"
    path = f"/policies/{segment('/')}/{segment(site)}"
    await kube.create(secret())
    await kube.create(pool(broker, topology={"queueType": "quorum", "priorityBands": 1}))
    await eventually(
        lambda: (topology(kube_api) or ("",))[0] == "True",
        timeout=20,
        what="TopologyReady condition True",
    )
    body = {
        "pattern": f"^{queue}$",
        "definition": {"delivery-limit": 0},
        "priority": 1,
        "apply-to": "queues",
    }
    assert await broker.raw("PUT", path, body) in (201, 204)
    try:
        found = await overridden(kube_api, timeout=20)
        limit = 2 + DELIVERY_LIMIT_SLACK  # MAX_ATTEMPTS 3 - 1 + slack (topology.py)
        assert f"policy {site} sets delivery-limit {limit} → 0" in found[2]
    finally:
        await broker.raw("DELETE", path)
