"""Broker failures through the real operator: wrong credentials and an unknown vhost against
the real broker, a login proxy's page and broken JSON from a fake management API. Each gets its
own reason, `Ready=False`, and the workloads are applied anyway; none stops the handlers."""

from collections.abc import AsyncIterator
from typing import Any

import pytest

from ffpool import names
from tests.kmock_ext import ApiServer
from tests.operator_harness import fake_mgmt
from tests.operator_harness.fake_mgmt import Answer
from tests.operator_harness.helpers import (
    NS,
    Broker,
    b64,
    condition,
    obj,
    pool,
    secret,
    status_when,
)
from tests.polling import eventually

pytest_plugins = ["tests.operator_harness.fixtures"]
pytestmark = [pytest.mark.rabbitmq, pytest.mark.kmock(cls=ApiServer)]


def reason_of(kube_api: Any, type_: str) -> tuple[str, str] | None:
    cond = condition(kube_api, type_)
    return None if cond is None else (cond["status"], cond["reason"])


async def test_wrong_password_is_an_auth_failure_retried_until_fixed(
    kube_api: Any, kube: Any, broker: Broker, operator: None
) -> None:
    await kube.create(secret(password="wrong"))
    await kube.create(pool(broker))
    await eventually(
        lambda: reason_of(kube_api, "Ready") == ("False", "BrokerAuthFailed"),
        timeout=15,
        what="Ready condition False (BrokerAuthFailed)",
    )
    assert reason_of(kube_api, "TopologyReady") == ("False", "BrokerAuthFailed")
    assert "credentials" in (condition(kube_api, "Ready") or {})["message"]
    assert obj(kube_api, "deployments", "pool-worker") is not None
    await kube.patch("Secret", NS, "rmq", {"data": {"password": b64("guest")}})
    # The first retry comes after the back-off's first step (10 s).
    await eventually(
        lambda: reason_of(kube_api, "Ready") == ("True", "Reconciled"),
        timeout=25,
        what="Ready condition True (Reconciled)",
    )
    assert reason_of(kube_api, "TopologyReady") == ("True", "Declared")


async def test_unknown_vhost_is_not_an_argument_conflict(
    kube_api: Any, kube: Any, broker: Broker, operator: None
) -> None:
    await kube.create(secret())
    await kube.create(pool(broker, rabbitmq={"vhost": f"{broker.prefix}-missing"}))
    await eventually(
        lambda: reason_of(kube_api, "Ready") == ("False", "VhostNotFound"),
        timeout=15,
        what="Ready condition False (VhostNotFound)",
    )
    assert reason_of(kube_api, "TopologyReady") == ("False", "VhostNotFound")
    assert obj(kube_api, "deployments", "pool-worker") is not None


@pytest.fixture(params=[fake_mgmt.HTML_LOGIN, fake_mgmt.BAD_JSON, fake_mgmt.WRONG_SHAPE])
async def fake_api(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    async with fake_mgmt.serve(Answer(*request.param)) as url:
        yield url


async def test_an_unusable_answer_is_unavailable_not_healthy_and_not_a_stall(
    kube_api: Any, kube: Any, broker: Broker, fake_api: str, operator: None
) -> None:
    await kube.create(secret(mgmt_url=fake_api))
    await kube.create(pool(broker))
    # A new pool gets its objects at once (no kopf retry wait after an escaped error)...
    await eventually(
        lambda: obj(kube_api, "deployments", "pool-worker") is not None,
        timeout=5,
        what="deployments/pool-worker",
    )
    await eventually(
        lambda: reason_of(kube_api, "Ready") == ("False", "UnexpectedAnswer"),
        timeout=5,
        what="Ready condition False (UnexpectedAnswer)",
    )
    assert reason_of(kube_api, "TopologyReady") == ("Unknown", "UnexpectedAnswer")
    # ...and the daemon keeps polling, holding with metrics unavailable.
    metrics = await eventually(
        lambda: condition(kube_api, "MetricsAvailable"),
        timeout=5,
        what="MetricsAvailable condition set",
    )
    assert metrics["status"] == "False"
    await eventually(
        lambda: status_when(kube_api, lambda s: "desired" in s["workers"]),
        timeout=5,
        what="status with workers.desired",
    )
    assert obj(kube_api, names.CRD_PLURAL, "pool") is not None


async def test_a_secret_without_the_amqp_url_is_not_ready(
    kube_api: Any, kube: Any, broker: Broker, operator: None
) -> None:
    await kube.create(secret(amqp_url=True))
    await kube.create(pool(broker))
    await eventually(
        lambda: reason_of(kube_api, "Ready") == ("False", "SecretIncomplete"),
        timeout=15,
        what="Ready condition False (SecretIncomplete)",
    )
    assert "'amqp-url'" in (condition(kube_api, "Ready") or {})["message"]
    # The operator's own work goes on: the management API is enough for it.
    await eventually(
        lambda: reason_of(kube_api, "TopologyReady") == ("True", "Declared"),
        timeout=15,
        what="TopologyReady condition True (Declared)",
    )
    await eventually(
        lambda: reason_of(kube_api, "MetricsAvailable") == ("True", "QueueStatsRead"),
        timeout=15,
        what="MetricsAvailable condition True (QueueStatsRead)",
    )


async def test_manual_scaling_does_not_claim_metrics_it_cannot_read(
    kube_api: Any, kube: Any, broker: Broker, operator: None
) -> None:
    async with fake_mgmt.serve(Answer(503, "")) as url:
        await kube.create(secret(mgmt_url=url))
        await kube.create(pool(broker, autoscaling={"enabled": False}, workers={"replicas": 2}))
        await eventually(
            lambda: status_when(kube_api, lambda s: s["workers"]["desired"] == 2),
            timeout=15,
            what="status workers.desired == 2",
        )
        metrics = await eventually(
            lambda: condition(kube_api, "MetricsAvailable"),
            timeout=15,
            what="MetricsAvailable condition set",
        )
        assert (metrics["status"], metrics["reason"]) == ("False", "ManagementAPIUnavailable")
        assert "metrics unavailable" in metrics["message"]
        # The reconcile handler and the autoscaling timer patch status apart: either may land first.
        await eventually(
            lambda: reason_of(kube_api, "TopologyReady") == ("Unknown", "BrokerUnavailable"),
            timeout=15,
            what="TopologyReady condition Unknown (BrokerUnavailable)",
        )
