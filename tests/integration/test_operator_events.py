"""Events through the real operator (KMock + the real broker): what `kubectl describe ffp`
shows when a pool fails and recovers, once per change and not once per poll."""

import asyncio
from typing import Any

import pytest

from ffpool import names
from tests.integration.test_operator_auth import TOKENS, tokens_secret
from tests.kmock_ext import ApiServer
from tests.operator_harness import fake_mgmt
from tests.operator_harness.fake_mgmt import Answer
from tests.operator_harness.helpers import NS, Broker, b64, condition, pool, secret
from tests.polling import eventually

pytest_plugins = ["tests.operator_harness.fixtures"]
pytestmark = [pytest.mark.rabbitmq, pytest.mark.kmock(cls=ApiServer)]


def pool_events(kube_api: Any, reason: str | None = None) -> list[dict[str, Any]]:
    """The pool's Events (as `kubectl describe` lists them), optionally of one reason."""
    found = [
        dict(e)
        for (r, ns, _), e in kube_api.objects.items()
        if r.plural == "events"
        and ns == NS
        and not e.deleted
        and (e.get("involvedObject") or {}).get("kind") == names.CRD_KIND
    ]
    return [e for e in found if reason is None or e.get("reason") == reason]


async def test_an_auth_failure_is_one_warning_and_its_fix_a_normal_event(
    kube_api: Any, kube: Any, broker: Broker, operator: None
) -> None:
    await kube.create(secret(password="wrong"))
    await kube.create(pool(broker))
    failed = await eventually(
        lambda: pool_events(kube_api, "BrokerAuthFailed"),
        timeout=15,
        what="BrokerAuthFailed event",
    )
    assert failed[0]["type"] == "Warning"
    assert "Ready=False" in failed[0]["message"]
    assert "TopologyReady=False" in failed[0]["message"]
    await kube.patch("Secret", NS, "rmq", {"data": {"password": b64("guest")}})
    # kopf retries after the back-off's first step (10 s, broker_status.retry_delay).
    fixed = await eventually(
        lambda: pool_events(kube_api, "Reconciled"),
        timeout=25,
        what="Reconciled event",
    )
    assert fixed[0]["type"] == "Normal"
    assert fixed[0]["involvedObject"]["name"] == "pool"
    assert len(pool_events(kube_api, "BrokerAuthFailed")) == 1


async def test_a_missing_tokens_secret_is_a_warning_event(
    kube_api: Any, kube: Any, broker: Broker, operator: None
) -> None:
    await kube.create(secret())
    await kube.create(pool(broker, **TOKENS))
    missing = await eventually(
        lambda: pool_events(kube_api, "TokensSecretMissing"),
        timeout=15,
        what="TokensSecretMissing event",
    )
    assert missing[0]["type"] == "Warning"
    assert "toks" in missing[0]["message"]
    await kube.create(tokens_secret())
    await eventually(
        lambda: pool_events(kube_api, "Reconciled"),
        timeout=30,
        what="Reconciled event",
    )


async def test_an_invalid_spec_is_a_warning_event(
    kube_api: Any, kube: Any, broker: Broker, operator: None
) -> None:
    await kube.create(secret())
    await kube.create(pool(broker, autoscaling={"minReplicas": 3, "maxReplicas": 1}))
    invalid = await eventually(
        lambda: pool_events(kube_api, "InvalidSpec"),
        timeout=15,
        what="InvalidSpec event",
    )
    assert invalid[0]["type"] == "Warning"
    assert "invalid spec" in invalid[0]["message"]


async def test_a_failure_seen_at_every_poll_is_posted_once(
    kube_api: Any, kube: Any, broker: Broker, operator: None
) -> None:
    answer = Answer(503, "")
    async with fake_mgmt.serve(answer) as url:
        await kube.create(secret(mgmt_url=url))
        await kube.create(pool(broker))  # polls every 0.3 s, drift check every 1 s
        await eventually(
            lambda: pool_events(kube_api, "ManagementAPIUnavailable"),
            timeout=15,
            what="ManagementAPIUnavailable event",
        )
        polls = len(answer.requests)
        await eventually(
            lambda: len(answer.requests) >= polls + 20,
            timeout=15,
            what="len(answer.requests) >= polls + 20",
        )  # ten polls at least
        await asyncio.sleep(0.5)  # kopf posts in the background: let a duplicate land
        assert (condition(kube_api, "MetricsAvailable") or {}).get("status") == "False"
        assert len(pool_events(kube_api, "ManagementAPIUnavailable")) == 1
        assert len(pool_events(kube_api, "BrokerUnavailable")) == 1
