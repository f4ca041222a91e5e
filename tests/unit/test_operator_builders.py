from typing import Any

import kubernetes_validate
import pytest

from ffpool import names
from ffpool.settings import env_variables
from ffpool_operator.manifests import deployments, network_policies, objects
from ffpool_operator.spec.pool import PoolSpec
from tests.operator_harness.samples import POOL, spec, spec_dict
from tests.podsecurity import hardening_gaps, violations

K8S_VERSION = "1.30"


def _all(s: PoolSpec) -> list[dict[str, Any]]:
    objs = [
        objects.config_map(POOL, s),
        objects.service(POOL, s),
        deployments.server_deployment(POOL, s),
        deployments.worker_deployment(POOL, s, None),
        objects.signing_secret(POOL, "0" * 64),
    ]
    if s.network_policy.enabled:
        objs += [
            network_policies.server_policy(POOL, s, 5672),
            network_policies.worker_policy(POOL, s, None),
        ]
    ing = objects.ingress(POOL, s)
    return objs + ([ing] if ing else [])


FULL = spec(
    servers={
        "ingress": {
            "enabled": True,
            "host": "ff.example.com",
            "className": "nginx",
            "tls": {"secretName": "ff-tls"},
            "annotations": {"a": "b"},
        },
        "scheduling": {"nodeSelector": {"pool": "x"}},
    },
    workers={
        "jobsPerWorker": 3,
        "resources": {"limits": {"cpu": "2"}},
        "scheduling": {"tolerations": [{"key": "k", "operator": "Exists"}]},
    },
    imagePullSecrets=["regcred"],
    auth={"tokensSecret": "tokens", "allowedOrigins": ["https://app.example.com"]},
    networkPolicy={"enabled": True, "brokerTo": [{"ipBlock": {"cidr": "203.0.113.7/32"}}]},
)


@pytest.mark.parametrize("s", [spec(), FULL], ids=["minimal", "full"])
def test_manifests_validate_strictly_against_kubernetes_schemas(s: PoolSpec) -> None:
    for obj in _all(s):
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


@pytest.mark.parametrize("s", [spec(), FULL], ids=["minimal", "full"])
def test_pods_pass_restricted_pod_security(s: PoolSpec) -> None:
    for dep in (deployments.server_deployment(POOL, s), deployments.worker_deployment(POOL, s, 2)):
        assert violations(dep) == []
        assert hardening_gaps(dep) == []


def test_podsecurity_checker_catches_violations() -> None:
    dep = deployments.worker_deployment(POOL, spec(), 1)
    pod = dep["spec"]["template"]["spec"]
    pod["securityContext"] = {}
    pod["hostNetwork"] = True
    pod["volumes"].append({"name": "h", "hostPath": {"path": "/"}})
    c = pod["containers"][0]
    c["securityContext"] = {"privileged": True, "capabilities": {"add": ["SYS_ADMIN"]}}
    found = " ".join(violations(dep))
    needles = [
        "hostNetwork",
        "hostPath",
        "privileged",
        "allowPrivilegeEscalation",
        "drop must include ALL",
        "NET_BIND_SERVICE",
        "runAsNonRoot",
        "seccomp",
    ]
    for needle in needles:
        assert needle in found


def test_every_child_is_owned_and_labelled() -> None:
    for obj in _all(FULL):
        meta = obj["metadata"]
        (ref,) = meta["ownerReferences"]
        assert ref == {
            "apiVersion": "ffpool.dev/v1alpha1",
            "kind": "FFmpegPool",
            "name": "demo",
            "uid": POOL.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
        assert meta["namespace"] == "media"
        assert meta["labels"][names.LABEL_POOL] == "demo"
        assert meta["labels"][names.LABEL_MANAGED_BY] == names.MANAGER


def test_env_comes_from_the_shared_topology_and_settings_names() -> None:
    s = spec(topology={"jobQueue": "q1", "maxPriority": 3}, workers={"jobsPerWorker": 4})
    routed = objects.config_map(POOL, spec(topology={"routingKey": "rk.1"}))["data"]
    assert routed["JOB_ROUTING_KEY"] == "rk.1"
    env = objects.config_map(POOL, s)["data"]
    assert env["JOB_QUEUE"] == "q1"
    assert env["JOB_ROUTING_KEY"] == "ffmpeg_job"
    assert env["QUEUE_MAX_PRIORITY"] == "3"
    assert env["MAX_CONCURRENT_JOBS"] == "4"
    assert env["BACKEND"] == "rabbitmq"
    settings_fields = env_variables()
    assert set(env) <= settings_fields, set(env) - settings_fields
    container = deployments.worker_deployment(POOL, s, 1)["spec"]["template"]["spec"]["containers"][
        0
    ]
    by_name = {e["name"]: e for e in container["env"]}
    assert by_name["RABBITMQ_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "rmq",
        "key": "amqp-url",
    }
    assert by_name["INSTANCE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert {"name": "media", "mountPath": "/media"} in container["volumeMounts"]


def test_config_change_rolls_pods_and_grace_exceeds_drain() -> None:
    a = deployments.worker_deployment(POOL, spec(), 1)["spec"]["template"]
    b = deployments.worker_deployment(POOL, spec(env={"JOB_TIMEOUT_SECONDS": "60"}), 1)["spec"][
        "template"
    ]
    key = objects.ANNOTATION_CONFIG_HASH
    assert a["metadata"]["annotations"][key] != b["metadata"]["annotations"][key]
    s = spec(workers={"drainSeconds": 120})
    grace = deployments.worker_deployment(POOL, s, 1)["spec"]["template"]["spec"]
    assert grace["terminationGracePeriodSeconds"] > 120
    with pytest.raises(ValueError, match="must exceed"):
        PoolSpec.model_validate(
            spec_dict(workers={"drainSeconds": 60, "terminationGracePeriodSeconds": 60})
        )


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"autoscaling": {"enabled": False}, "workers": {"replicas": 3}}, 3),
        ({"autoscaling": {"minReplicas": 2}}, 2),
        ({}, 0),
    ],
)
def test_worker_count_is_written_only_at_creation(overrides: dict[str, Any], expected: int) -> None:
    """After creation the daemon owns the count (autoscaler, or busy-aware manual scale): a
    reconcile apply without `replicas` cannot race with it (docs/operator.md, "Worker count")."""
    s = spec(**overrides)
    assert "replicas" not in deployments.worker_deployment(POOL, s)["spec"]
    assert deployments.initial_worker_replicas(s) == expected
    assert deployments.worker_deployment(POOL, s, 4)["spec"]["replicas"] == 4
    scale = deployments.worker_replicas(POOL, expected)
    assert scale["spec"] == {"replicas": expected}  # the daemon's apply owns the count alone
    assert scale["metadata"]["name"] == deployments.worker_deployment(POOL, s)["metadata"]["name"]


def test_ingress_routes_only_the_client_paths() -> None:
    assert objects.ingress(POOL, spec()) is None
    ing = objects.ingress(POOL, FULL)
    assert ing is not None
    rule = ing["spec"]["rules"][0]
    ports = {p["path"]: p["backend"]["service"]["port"]["name"] for p in rule["http"]["paths"]}
    assert ports == {
        "/ws": "ws",
        "/uploads": "http",
        "/jobs": "http",
        "/health": "http",
        "/schema/protocol.json": "http",
        "/auth/ticket": "http",
        "/": "http",
        "/static": "http",
        "/ui/config.json": "http",
    }
    assert ing["spec"]["tls"] == [{"secretName": "ff-tls", "hosts": ["ff.example.com"]}]
    assert ing["spec"]["ingressClassName"] == "nginx"
