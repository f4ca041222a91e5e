"""The operator image, run as the chart runs it (uid 10001, read-only root, no capabilities),
against KMock as its Kubernetes API. Without an API the operator's startup handler fails (no
configuration), kopf retries it every 60 s and never starts its liveness endpoint, while the
metrics port answers regardless; so `/healthz` answering means the operator started against the
fake, and the test then checks that it really works through it: a pool gets its children and a
status written by the operator's own code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ffpool import names
from tests.images.conftest import (
    OPERATOR,
    Images,
    assert_restricted,
    container,
    free_port,
    logs,
    process_status,
    wait_http,
)
from tests.kmock_ext import ApiServer
from tests.operator_harness.helpers import NS, condition, obj, secret
from tests.operator_harness.samples import spec_dict
from tests.polling import eventually

pytest_plugins = ["tests.operator_harness.fixtures"]
pytestmark = [pytest.mark.images, pytest.mark.kmock(cls=ApiServer), pytest.mark.timeout(1500)]

POOL = {
    "apiVersion": f"{names.API_GROUP}/{names.API_VERSION}",
    "kind": names.CRD_KIND,
    "metadata": {"name": "pool", "namespace": NS},
    "spec": spec_dict(image="ffpool:test"),
}


async def test_operator_answers_healthz_and_reconciles(
    images: Images, kube_api: Any, kube: Any, tmp_path: Path
) -> None:
    # kmock_ext serves plain HTTP on loopback: the container shares the host's network.
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.chmod(0o644)
    live_port, metrics_port, closed_port = free_port(), free_port(), free_port()
    with container(
        images,
        "-v",
        f"{kubeconfig}:/etc/ffpool/kubeconfig:ro",
        "-e",
        "KUBECONFIG=/etc/ffpool/kubeconfig",
        OPERATOR,
        f"--liveness=http://127.0.0.1:{live_port}/healthz",
        f"--metrics-port={metrics_port}",
    ) as name:
        health = await wait_http(images, name, f"http://127.0.0.1:{live_port}/healthz")
        assert isinstance(json.loads(health), dict)  # kopf's probe results
        assert_restricted(process_status(images, name))
        metrics = await wait_http(images, name, f"http://127.0.0.1:{metrics_port}/metrics")
        assert "python_info" in metrics

        # The broker's management URL points at a closed port: the topology fails fast and the
        # operator still applies the children and reports why the pool is not ready.
        await kube.create(secret(mgmt_url=f"http://127.0.0.1:{closed_port}"))
        created = await kube.create(POOL)
        uid = created["metadata"]["uid"]
        try:
            worker = await eventually(
                lambda: obj(kube_api, "deployments", "pool-worker"),
                timeout=60,
                what="deployments/pool-worker",
            )
            ready = await eventually(
                lambda: condition(kube_api, "Ready"), timeout=60, what="Ready condition set"
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{logs(images, name)}") from exc
        assert worker["metadata"]["ownerReferences"][0]["uid"] == uid
        assert worker["spec"]["template"]["spec"]["containers"][0]["image"] == "ffpool:test"
        assert ready is not None
        assert ready["status"] == "False"
        assert ready["reason"] == "BrokerUnavailable"
        body = obj(kube_api, names.CRD_PLURAL, "pool")
        assert f"{names.API_GROUP}/finalizer" in body["metadata"]["finalizers"]
