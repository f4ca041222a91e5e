"""A pool's storage as the operator builds it (ffpool_operator/manifests/storage.py): the PVC
form exactly as before, the bucket form with no PVC (emptyDir scratch, the bucket's settings in
the ConfigMap, the key pair by `secretKeyRef` only, a private CA as a Secret file), the tenants
file and webhook secret as read-only Secret volumes, and the NetworkPolicy egress each needs."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from ffpool import names
from ffpool.domain.jobs import S3Prefix
from ffpool.settings import Settings, StorageKind, env_variables
from ffpool_operator.manifests import deployments, network_policies, objects, storage
from ffpool_operator.spec.pool import PoolSpec
from ffpool_operator.spec.storage import S3_LOCATION_PATTERN
from tests.operator_harness.samples import POOL, spec
from tests.podsecurity import hardening_gaps, violations

SERVER, WORKER = names.COMPONENT_SERVER, names.COMPONENT_WORKER
S3 = {
    "bucket": "ffpool-media",
    "prefix": "pools/media",
    "endpoint": "https://minio.minio.svc:9000",
    "region": "eu-west-1",
    "pathStyle": True,
    "caSecretRef": {"name": "minio-ca", "key": "ca.crt"},
    "credentialsSecretRef": {"name": "ffpool-s3"},
    "outputUrl": "s3://media-out/ffpool",
    "allowRead": ["s3://media-in/", "s3://archive/public"],
    "allowWrite": ["s3://media-out/"],
}
BUCKET = spec(storage={"s3": S3, "scratchSizeLimit": "50Gi"})
EVERYTHING = spec(
    storage={"s3": S3},
    tenants={"secretRef": {"name": "ffpool-tenants", "key": "tenants.toml"}},
    webhooks={
        "url": "https://hooks.example.com/ffpool",
        "secretRef": {"name": "ffpool-webhooks", "key": "secret"},
    },
    networkPolicy={"enabled": True},
)


def _pod(s: PoolSpec, component: str) -> dict[str, Any]:
    pod: dict[str, Any] = deployments.deployment(POOL, s, component, 1)["spec"]["template"]["spec"]
    return pod


def _volumes(s: PoolSpec, component: str) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in _pod(s, component)["volumes"]}


def _mounts(s: PoolSpec, component: str) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in _pod(s, component)["containers"][0]["volumeMounts"]}


def _env(s: PoolSpec, component: str) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in _pod(s, component)["containers"][0]["env"]}


def test_the_pvc_form_is_built_as_before() -> None:
    """No new volume, mount, env or setting: an upgraded operator restarts no existing pool."""
    s = spec()
    for component in (SERVER, WORKER):
        volumes = _volumes(s, component)
        assert volumes["media"] == {
            "name": "media",
            "persistentVolumeClaim": {"claimName": "media"},
        }
        assert set(volumes) <= {"tmp", "media", "signing", "tokens"}
        assert _mounts(s, component)["media"] == {"name": "media", "mountPath": "/media"}
        assert set(_env(s, component)) <= {"RABBITMQ_URL", "INSTANCE_NAME", "AUTH_TOKENS_FILE"}
    data = objects.config_map(POOL, s)["data"]
    assert data["MEDIA_ROOT"] == "/media"
    assert not {k for k in data if k.startswith(("S3_", "STORAGE", "WEBHOOK", "TENANTS"))}
    assert "SCRATCH_ROOT" not in data


@pytest.mark.parametrize("component", [SERVER, WORKER])
def test_the_bucket_form_has_no_pvc_and_an_emptydir_scratch(component: str) -> None:
    volumes = _volumes(BUCKET, component)
    assert not [v for v in volumes.values() if "persistentVolumeClaim" in v]
    assert volumes["scratch"]["emptyDir"] == {"sizeLimit": "50Gi"}
    assert volumes["media"]["emptyDir"] == {"sizeLimit": storage.MEDIA_SIZE_LIMIT}
    mounts = _mounts(BUCKET, component)
    data = objects.config_map(POOL, BUCKET)["data"]
    assert data["SCRATCH_ROOT"] == mounts["scratch"]["mountPath"]
    assert data["MEDIA_ROOT"] == mounts["media"]["mountPath"] == "/media"
    default = spec(storage={"s3": {"bucket": "b-1"}})
    assert _volumes(default, component)["scratch"]["emptyDir"] == {"sizeLimit": "20Gi"}


def test_the_bucket_settings_reach_the_config_map_and_parse_as_settings() -> None:
    data = objects.config_map(POOL, BUCKET)["data"]
    assert {
        "STORAGE": "s3",
        "S3_BUCKET": "ffpool-media",
        "S3_PREFIX": "pools/media",
        "S3_ENDPOINT_URL": "https://minio.minio.svc:9000",
        "S3_REGION": "eu-west-1",
        "S3_PATH_STYLE": "true",
        "S3_VERIFY_TLS": "true",
        "OUTPUT_URL": "s3://media-out/ffpool",
        "S3_ALLOW_READ": "s3://media-in/,s3://archive/public",
        "S3_ALLOW_WRITE": "s3://media-out/",
        "S3_CA_BUNDLE": f"{storage.S3_CA_DIR}/ca.crt",
    }.items() <= data.items()
    assert set(data) <= env_variables(), set(data) - env_variables()
    settings = Settings.model_validate({k.lower(): v for k, v in data.items()})
    assert settings.storage is StorageKind.S3
    assert settings.s3_allow_read == ("s3://media-in/", "s3://archive/public")
    assert settings.s3_path_style is True
    minimal = objects.config_map(POOL, spec(storage={"s3": {"bucket": "b-1"}}))["data"]
    assert not {"S3_ENDPOINT_URL", "S3_CA_BUNDLE", "OUTPUT_URL", "S3_ALLOW_READ"} & set(minimal)
    assert minimal["S3_PATH_STYLE"] == "false"


@pytest.mark.parametrize("component", [SERVER, WORKER])
def test_the_key_pair_comes_only_by_secret_key_ref(component: str) -> None:
    env = _env(BUCKET, component)
    for name, key in (
        ("S3_ACCESS_KEY_ID", "accessKeyId"),
        ("S3_SECRET_ACCESS_KEY", "secretAccessKey"),
    ):
        assert env[name] == {
            "name": name,
            "valueFrom": {"secretKeyRef": {"name": "ffpool-s3", "key": key}},
        }
    data = objects.config_map(POOL, BUCKET)["data"]
    assert not {"S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY"} & set(data)
    # Unset: the pod's own identity (IRSA and the like), no key env at all.
    identity = spec(storage={"s3": {"bucket": "b-1"}})
    assert not {"S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY"} & set(_env(identity, component))


@pytest.mark.parametrize("component", [SERVER, WORKER])
def test_a_private_ca_is_a_read_only_secret_file(component: str) -> None:
    volume = _volumes(BUCKET, component)[storage.S3_CA_VOLUME]
    assert volume["secret"] == {"secretName": "minio-ca", "defaultMode": 0o440}
    mount = _mounts(BUCKET, component)[storage.S3_CA_VOLUME]
    assert mount["readOnly"] is True
    assert "subPath" not in mount
    ca_file = objects.config_map(POOL, BUCKET)["data"]["S3_CA_BUNDLE"]
    assert ca_file == f"{mount['mountPath']}/ca.crt"


def test_tenants_and_the_webhook_secret_reach_both_components() -> None:
    """Workers queue their jobs' deliveries only when they hold a secret (docs/webhooks.md)."""
    for component in (SERVER, WORKER):
        tenants = _volumes(EVERYTHING, component)[storage.TENANTS_VOLUME]
        assert tenants["secret"] == {"secretName": "ffpool-tenants", "defaultMode": 0o440}
        mount = _mounts(EVERYTHING, component)[storage.TENANTS_VOLUME]
        assert mount["readOnly"] is True
        assert "subPath" not in mount
        path = _env(EVERYTHING, component)["TENANTS_FILE"]["value"]
        assert path == f"{mount['mountPath']}/tenants.toml"
        hook = _volumes(EVERYTHING, component)[storage.WEBHOOK_VOLUME]
        assert hook["secret"] == {"secretName": "ffpool-webhooks", "defaultMode": 0o440}
        mount = _mounts(EVERYTHING, component)[storage.WEBHOOK_VOLUME]
        assert mount["readOnly"] is True
        secret_file = _env(EVERYTHING, component)["WEBHOOK_SECRET_FILE"]["value"]
        assert secret_file == f"{mount['mountPath']}/secret"
    # The default URL is for both: workers publish the deliveries of the state changes they make.
    assert objects.config_map(POOL, EVERYTHING)["data"]["WEBHOOK_URL"] == (
        "https://hooks.example.com/ffpool"
    )
    secrets = "ffpool-tenants ffpool-webhooks ffpool-s3"
    data = str(objects.config_map(POOL, EVERYTHING)["data"])
    assert not [name for name in secrets.split() if name in data]


@pytest.mark.parametrize("s", [BUCKET, EVERYTHING], ids=["bucket", "everything"])
def test_bucket_pods_validate_and_stay_restricted(s: PoolSpec) -> None:
    objs = [
        objects.config_map(POOL, s),
        deployments.server_deployment(POOL, s),
        deployments.worker_deployment(POOL, s, 2),
        network_policies.server_policy(POOL, s, 5672),
        network_policies.worker_policy(POOL, s, None),
    ]
    for obj in objs:
        kubernetes_validate.validate(obj, "1.30", strict=True)
    for dep in objs[1:3]:
        assert violations(dep) == []
        assert hardening_gaps(dep) == []  # read-only root, numeric user, no token


def _egress(s: PoolSpec, component: str) -> list[dict[str, Any]]:
    build = (
        network_policies.server_policy if component == SERVER else network_policies.worker_policy
    )
    egress: list[dict[str, Any]] = build(POOL, s, 5672)["spec"]["egress"]
    return egress


def _ports(rule: dict[str, Any]) -> set[tuple[Any, str]]:
    return {(p["port"], p["protocol"]) for p in rule.get("ports", [])}


@pytest.mark.parametrize("component", [SERVER, WORKER])
def test_bucket_egress_is_the_endpoints_port(component: str) -> None:
    policy = {"enabled": True, "webhooks": False, "urlInputs": False}
    s = spec(storage={"s3": S3}, networkPolicy=policy)
    _dns, _broker, bucket = _egress(s, component)
    assert _ports(bucket) == {(9000, "TCP")}
    assert "to" not in bucket  # no storageTo: any address, that port only
    minio = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "minio"}}}]
    narrowed = spec(storage={"s3": S3}, networkPolicy={**policy, "storageTo": minio})
    assert _egress(narrowed, component)[2]["to"] == minio
    plain = spec(
        storage={"s3": {"bucket": "b-1", "endpoint": "http://10.0.0.5"}}, networkPolicy=policy
    )
    assert _ports(_egress(plain, component)[2]) == {(80, "TCP")}
    # AWS S3 (no endpoint): public addresses, HTTPS only.
    aws = spec(storage={"s3": {"bucket": "b-1"}}, networkPolicy=policy)
    rule = _egress(aws, component)[2]
    assert _ports(rule) == {(443, "TCP")}
    blocks = {b["ipBlock"]["cidr"]: b["ipBlock"]["except"] for b in rule["to"]}
    assert "169.254.0.0/16" in blocks["0.0.0.0/0"]
    assert "10.0.0.0/8" in blocks["0.0.0.0/0"]
    # The PVC form opens nothing new.
    assert len(_egress(spec(networkPolicy=policy), component)) == 2


def test_webhook_egress_is_for_servers_only() -> None:
    receiver = [{"podSelector": {"matchLabels": {"app": "hooks"}}}]
    s = spec(networkPolicy={"enabled": True, "urlInputs": False, "webhooksTo": receiver})
    *_, hooks = _egress(s, SERVER)
    assert "ports" not in hooks
    assert receiver[0] in hooks["to"]
    assert {"0.0.0.0/0", "::/0"} <= {b["ipBlock"]["cidr"] for b in hooks["to"] if "ipBlock" in b}
    assert len(_egress(s, WORKER)) == 2  # workers publish deliveries to the broker, never POST
    only = spec(networkPolicy={"enabled": True, "webhooks": False, "webhooksTo": receiver})
    assert _egress(only, SERVER)[2] == {"to": receiver}


def test_s3_locations_follow_the_services_pattern() -> None:
    """The CRD refuses what the service would refuse at start-up, and nothing more."""
    [constraint] = [m for m in S3Prefix.__metadata__ if getattr(m, "pattern", None)]
    assert constraint.pattern == S3_LOCATION_PATTERN
