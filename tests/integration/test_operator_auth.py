"""The operator's security wiring against KMock and the real broker: a missing tokens Secret is a
condition with its reason and a retry, not silence; the signing key is created once and never
rotated by later reconciles; the NetworkPolicies follow `networkPolicy.enabled`."""

from typing import Any

import pytest

from ffpool import names
from tests.kmock_ext import ApiServer
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
TOKENS = {"auth": {"tokensSecret": "toks", "allowAnonymous": False}}


def _ready(kube_api: Any) -> dict[str, Any] | None:
    return condition(kube_api, "Ready")


def tokens_secret() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "toks", "namespace": NS},
        "data": {"tokens": b64("team-a sha256:" + "0" * 64 + "\n")},
    }


async def test_a_missing_tokens_secret_is_reported_and_retried(
    kube_api: Any, kube: Any, broker: Broker, operator: None
) -> None:
    await kube.create(secret())
    await kube.create(pool(broker, **TOKENS))
    missing = await eventually(
        lambda: (c := _ready(kube_api)) and c["reason"] == "TokensSecretMissing" and c,
        timeout=15,
        what="Ready condition TokensSecretMissing",
    )
    assert missing["status"] == "False"
    assert "toks" in missing["message"]
    # The server Deployment is applied anyway: its pods start once the Secret exists.
    server = await kube.get("Deployment", NS, "pool-server")
    assert server is not None
    volumes = server["spec"]["template"]["spec"]["volumes"]
    assert {"toks", "pool-signing"} <= {(v.get("secret") or {}).get("secretName") for v in volumes}
    await kube.create(tokens_secret())
    # kopf retries after the back-off's first step (10 s, broker_status.retry_delay).
    ready = await eventually(
        lambda: (c := _ready(kube_api)) and c["status"] == "True" and c,
        timeout=30,
        what="Ready condition True",
    )
    assert ready["reason"] == "Reconciled"


async def test_the_signing_key_is_created_once_and_never_rotated(
    kube_api: Any, kube: Any, broker: Broker, operator: None
) -> None:
    await kube.create(secret())
    await kube.create(pool(broker))
    signing = await eventually(
        lambda: obj(kube_api, "secrets", "pool-signing"), timeout=15, what="secrets/pool-signing"
    )
    first = dict(signing.get("data") or signing.get("stringData") or {})
    assert len(first["signing-key"]) >= 64
    assert signing["metadata"]["ownerReferences"][0]["name"] == "pool"
    for generation, value in ((2, "60"), (3, "61")):
        env = {"spec": {"env": {"JOB_TIMEOUT_SECONDS": value}}}
        await kube.patch(names.CRD_KIND, NS, "pool", env)
        await eventually(
            lambda g=generation: status_when(kube_api, lambda s: s["observedGeneration"] == g),
            timeout=15,
            what="status observedGeneration == g",
        )
    after = await kube.get("Secret", NS, "pool-signing")
    assert after is not None
    assert dict(after.get("data") or after.get("stringData") or {}) == first


async def test_an_existing_signing_key_is_kept(
    kube_api: Any, kube: Any, broker: Broker, operator: None
) -> None:
    own = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "pool-signing", "namespace": NS},
        "data": {"signing-key": b64("k" * 32)},
    }
    await kube.create(own)
    await kube.create(secret())
    await kube.create(pool(broker))
    await eventually(
        lambda: status_when(kube_api, lambda s: s["observedGeneration"] == 1),
        timeout=15,
        what="status observedGeneration == 1",
    )
    kept = await kube.get("Secret", NS, "pool-signing")
    assert kept is not None
    assert kept["data"] == own["data"]


async def test_network_policies_follow_the_spec(
    kube_api: Any, kube: Any, broker: Broker, operator: None
) -> None:
    await kube.create(secret())
    await kube.create(pool(broker, networkPolicy={"enabled": True}))
    server = await eventually(
        lambda: obj(kube_api, "networkpolicies", "pool-server-netpol"),
        timeout=15,
        what="networkpolicies/pool-server-netpol",
    )
    worker = await eventually(
        lambda: obj(kube_api, "networkpolicies", "pool-worker-netpol"),
        timeout=15,
        what="networkpolicies/pool-worker-netpol",
    )
    # The broker's port from the Secret's AMQP URL (tests/operator_harness/helpers.AMQP_URL).
    assert [p["port"] for p in server["spec"]["egress"][1]["ports"]] == [5672]
    assert len(worker["spec"]["egress"]) == 3  # DNS, broker, public addresses (URL inputs)
    await kube.patch(names.CRD_KIND, NS, "pool", {"spec": {"networkPolicy": {"enabled": False}}})
    # Deleted one after the other: each is polled for, not read the moment the first is gone.
    await eventually(
        lambda: obj(kube_api, "networkpolicies", "pool-server-netpol") is None,
        timeout=15,
        what="networkpolicies/pool-server-netpol gone",
    )
    await eventually(
        lambda: obj(kube_api, "networkpolicies", "pool-worker-netpol") is None,
        timeout=15,
        what="networkpolicies/pool-worker-netpol gone",
    )
