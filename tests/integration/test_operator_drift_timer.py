"""The topology drift check runs in its own daemon (KMock + the real operator + a fake
management API): while the broker takes seconds to answer the topology calls, the autoscaling
poll still runs at its own period."""

import asyncio
from typing import Any

import pytest

from tests.kmock_ext import ApiServer
from tests.operator_harness import fake_mgmt
from tests.operator_harness.fake_mgmt import Answer
from tests.operator_harness.helpers import Broker, obj, pool, secret
from tests.polling import eventually

pytest_plugins = ["tests.operator_harness.fixtures"]
pytestmark = [pytest.mark.rabbitmq, pytest.mark.kmock(cls=ApiServer)]
SLOW_SECONDS = 4.0  # under rabbitmq.timeoutSeconds (5 s): slow, not failed


def polls(answer: Answer) -> int:
    """Each autoscaling poll reads the worker connections once (autoscaler.read_activity)."""
    return sum(1 for r in answer.requests if r.startswith("GET") and r.endswith("/connections"))


def drift_checks(answer: Answer) -> int:
    return sum(1 for r in answer.requests if r.startswith("PUT /api/exchanges/"))


async def test_a_slow_topology_call_does_not_delay_scaling(
    kube_api: Any, kube: Any, broker: Broker, operator: None
) -> None:
    answer = Answer(503, "", delays={"PUT /api/exchanges/": SLOW_SECONDS})
    async with fake_mgmt.serve(answer) as url:
        await kube.create(secret(mgmt_url=url))
        await kube.create(pool(broker))  # polls every 0.3 s, drift check every 1 s
        await eventually(
            lambda: obj(kube_api, "deployments", "pool-worker") is not None,
            timeout=10,
            what="deployments/pool-worker",
        )
        await eventually(
            lambda: drift_checks(answer) >= 2, timeout=10, what="drift_checks(answer) >= 2"
        )  # the daemon's, not the reconcile's
        before, checks = polls(answer), drift_checks(answer)
        start = asyncio.get_running_loop().time()
        # Across one slow check, at the 0.3 s period: 13 polls expected, 4 asked for (a shared
        # CPU slows polls). In the poll's own loop, a check due every 1 s would allow 1 or 2.
        await eventually(
            lambda: polls(answer) >= before + 4,
            timeout=SLOW_SECONDS,
            what="polls(answer) >= before + 4",
        )
        assert asyncio.get_running_loop().time() - start < SLOW_SECONDS
        assert drift_checks(answer) <= checks + 1  # the checks themselves stay slow
