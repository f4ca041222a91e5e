"""Every manifest users apply — the rendered chart, the CRD, the examples, and the objects the
operator builds for the example pools — validates against the Kubernetes schemas (strict: unknown
fields fail), meets the "restricted" Pod Security Standard, and the example pools validate
against the CRD's own OpenAPI schema."""

from __future__ import annotations

import base64
import copy
from typing import Any
from urllib.parse import unquote, urlsplit

import jsonschema
import kubernetes_validate
import pytest
import yaml

from ffpool import names
from ffpool.auth import tenants
from ffpool_operator.manifests import deployments, network_policies, objects
from ffpool_operator.spec.pool import PoolRef, PoolSpec
from tests import helmchart, podsecurity
from tests.helmchart import ROOT, manifests, of_kind

# The chart's minimum (Chart.yaml kubeVersion) and the newest schemas kubernetes-validate ships.
K8S_VERSIONS = ["1.25.0", kubernetes_validate.latest_version()]
EXAMPLES = ROOT / "examples"


def _docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((EXAMPLES / name).read_text()) if d]


POOL_EXAMPLES = ("ffmpegpool.yaml", "ffmpegpool-s3.yaml")  # a PVC pool, a bucket pool


def _example_pool(name: str = "ffmpegpool.yaml") -> dict[str, Any]:
    [pool] = [d for d in _docs(name) if d["kind"] == names.CRD_KIND]
    return pool


def _bucket_pool_objects() -> list[dict[str, Any]]:
    """What the operator creates for the bucket example pool, NetworkPolicies included."""
    body = _example_pool("ffmpegpool-s3.yaml")
    spec = PoolSpec.model_validate(body["spec"])
    pool = PoolRef(name=body["metadata"]["name"], namespace="default", uid="5678")
    return [
        objects.config_map(pool, spec),
        deployments.server_deployment(pool, spec),
        deployments.worker_deployment(pool, spec, None),
        network_policies.server_policy(pool, spec, None),
        network_policies.worker_policy(pool, spec, None),
    ]


def _operator_objects() -> list[dict[str, Any]]:
    """What the operator creates for the example pools (the PVC one with its Ingress on)."""
    body = copy.deepcopy(_example_pool())
    body["spec"]["servers"]["ingress"].update(
        enabled=True, host="ffpool.example.com", className="nginx", tls={"secretName": "tls"}
    )
    spec = PoolSpec.model_validate(body["spec"])
    pool = PoolRef(name=body["metadata"]["name"], namespace="default", uid="1234")
    ingress = objects.ingress(pool, spec)
    assert ingress is not None
    return [
        objects.config_map(pool, spec),
        objects.service(pool, spec),
        ingress,
        deployments.server_deployment(pool, spec),
        deployments.worker_deployment(pool, spec, None),
        *_bucket_pool_objects(),
    ]


def _k8s_objects() -> list[tuple[str, dict[str, Any]]]:
    out = [
        (f"chart[{variant}] {o['kind']}/{o['metadata']['name']}", o)
        for variant, values in helmchart.VARIANTS.items()
        for o in manifests(values)
    ]
    out += [(f"chart crds/ {o['metadata']['name']}", o) for o in helmchart.crd_documents()]
    for name in ("rabbitmq.yaml", "rabbitmq-cluster.yaml", "rabbitmq-secret.yaml", *POOL_EXAMPLES):
        out += [(f"examples/{name} {o['kind']}", o) for o in _docs(name)]
    out += [(f"operator {o['kind']}/{o['metadata']['name']}", o) for o in _operator_objects()]
    # The Prometheus Operator's kinds (ServiceMonitor, PrometheusRule) have no schema here:
    # tests/unit/test_monitoring_chart.py and promtool check them.
    return [
        (label, o)
        for label, o in out
        if o["kind"] != names.CRD_KIND and not o["apiVersion"].startswith("monitoring.coreos.com/")
    ]


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_manifest_validates_strictly(version: str) -> None:
    errors = []
    for label, obj in _k8s_objects():
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{label}: {exc.message} at {list(exc.path)}")
    assert errors == []


def test_strict_validation_catches_a_misspelt_field() -> None:
    [deployment] = of_kind(manifests(), "Deployment")
    broken = copy.deepcopy(deployment)
    broken["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGett"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSIONS[-1], strict=True)


def _pods() -> list[tuple[str, dict[str, Any]]]:
    return [(label, o) for label, o in _k8s_objects() if o["kind"] == "Deployment"]


def test_every_pod_meets_the_restricted_standard() -> None:
    pods = _pods()
    assert len(pods) >= len(helmchart.VARIANTS) + 5  # chart, rabbitmq, two pools: server, worker
    found = {label: podsecurity.violations(obj) for label, obj in pods}
    assert {label: v for label, v in found.items() if v} == {}


def test_operator_pod_hardening_beyond_the_standard() -> None:
    """Read-only root and a numeric user too; the token is mounted only because the operator
    is an API client (the one expected gap)."""
    for values in helmchart.VARIANTS.values():
        [deployment] = of_kind(manifests(values), "Deployment")
        assert podsecurity.hardening_gaps(deployment) == [
            "pod: automountServiceAccountToken should be false"
        ]


def test_pool_pods_are_fully_hardened() -> None:
    for obj in _operator_objects():
        if obj["kind"] == "Deployment":
            assert podsecurity.hardening_gaps(obj) == [], obj["metadata"]["name"]


def test_restricted_check_can_fail() -> None:
    [deployment] = of_kind(
        manifests({"securityContext": {"allowPrivilegeEscalation": True}}), "Deployment"
    )
    assert podsecurity.violations(deployment) == [
        "container operator: allowPrivilegeEscalation must be false"
    ]


def openapi_to_jsonschema(node: Any) -> Any:
    """A CRD's OpenAPI v3.0 structural schema as JSON Schema draft 4, the way the API server
    applies it with kubectl's default strict field validation: `nullable` allows null, and
    objects with listed properties reject unknown fields unless marked preserve-unknown."""
    if isinstance(node, list):
        return [openapi_to_jsonschema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: openapi_to_jsonschema(v) for k, v in node.items() if k != "properties"}
    if "properties" in node:
        out["properties"] = {k: openapi_to_jsonschema(v) for k, v in node["properties"].items()}
        if not node.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    if node.get("nullable") and "type" in node:
        out["type"] = [node["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def _crd_validator() -> jsonschema.Draft4Validator:
    [crd] = helmchart.crd_documents()
    [version] = [v for v in crd["spec"]["versions"] if v["name"] == names.API_VERSION]
    schema = openapi_to_jsonschema(version["schema"]["openAPIV3Schema"])
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema)


def _body(pool: dict[str, Any]) -> dict[str, Any]:
    """apiVersion, kind and metadata are the API server's, not the CRD schema's."""
    return {k: v for k, v in pool.items() if k not in {"apiVersion", "kind", "metadata"}}


@pytest.mark.parametrize("name", POOL_EXAMPLES)
def test_example_pool_validates_against_the_crd_schema(name: str) -> None:
    pool = _example_pool(name)
    assert pool["apiVersion"] == f"{names.API_GROUP}/{names.API_VERSION}"
    errors = [e.message for e in _crd_validator().iter_errors(_body(pool))]
    assert errors == []
    PoolSpec.model_validate(pool["spec"])  # and the operator's own parser agrees


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("autoscaling", "maxReplicass"), 3),
        (("autoscaling", "minReplicas"), -1),
        (("workers", "jobsPerWorker"), "two"),
        (("topology", "deletionPolicy"), "Purge"),
        (("storage", "claimName"), "Not_Valid"),
    ],
)
def test_crd_schema_rejects_a_broken_pool(path: tuple[str, str], value: Any) -> None:
    body = _body(copy.deepcopy(_example_pool()))
    body["spec"][path[0]][path[1]] = value
    assert list(_crd_validator().iter_errors(body)) != []


def test_example_secret_matches_what_the_pool_and_broker_read() -> None:
    spec = PoolSpec.model_validate(_example_pool()["spec"])
    [secret] = _docs("rabbitmq-secret.yaml")
    data = secret["stringData"]
    assert secret["metadata"]["name"] == spec.rabbitmq.secret_name
    rmq = spec.rabbitmq
    for key in (rmq.amqp_url_key, rmq.management_url_key, rmq.username_key, rmq.password_key):
        assert key in data, key
    amqp = urlsplit(data[rmq.amqp_url_key])
    assert unquote(amqp.path[1:]) == rmq.vhost
    assert (amqp.username, amqp.password) == (data[rmq.username_key], data[rmq.password_key])
    broker = {o["kind"]: o for o in _docs("rabbitmq.yaml")}
    service = broker["Service"]["metadata"]["name"]
    for url in (data[rmq.amqp_url_key], data[rmq.management_url_key]):
        assert urlsplit(url).hostname == f"{service}.default.svc.cluster.local"
    env = broker["Deployment"]["spec"]["template"]["spec"]["containers"][0]["env"]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in env}
    assert refs["RABBITMQ_DEFAULT_USER"] == {"name": rmq.secret_name, "key": rmq.username_key}
    assert refs["RABBITMQ_DEFAULT_PASS"] == {"name": rmq.secret_name, "key": rmq.password_key}


def test_example_pool_claims_the_example_volume() -> None:
    [claim] = [d for d in _docs("ffmpegpool.yaml") if d["kind"] == "PersistentVolumeClaim"]
    spec = PoolSpec.model_validate(_example_pool()["spec"])
    assert claim["metadata"]["name"] == spec.storage.claim_name


def test_dev_broker_outlasts_the_longest_job() -> None:
    """consumer_timeout below the job timeout would redeliver every long job (docs)."""
    [config] = [d for d in _docs("rabbitmq.yaml") if d["kind"] == "ConfigMap"]
    conf = dict(
        line.split(" = ", 1)
        for line in config["data"]["20-ffpool.conf"].splitlines()
        if " = " in line and not line.startswith("#")
    )
    job_timeout_s = float(_example_pool()["spec"]["env"]["JOB_TIMEOUT_SECONDS"])
    assert int(conf["consumer_timeout"]) > job_timeout_s * 1000


def test_bucket_example_secrets_match_what_the_pool_reads() -> None:
    """The credentials, webhook secret and tenants file in examples/ffmpegpool-s3.yaml are
    where its pool looks for them, and in the forms the service parses."""
    spec = PoolSpec.model_validate(_example_pool("ffmpegpool-s3.yaml")["spec"])
    secrets = {d["metadata"]["name"]: d["stringData"] for d in _docs("ffmpegpool-s3.yaml")[:-1]}
    s3 = spec.storage.s3
    assert s3 is not None
    assert spec.storage.claim_name is None
    assert s3.credentials_secret_ref is not None
    creds = secrets[s3.credentials_secret_ref.name]
    assert {
        s3.credentials_secret_ref.access_key_id_key,
        s3.credentials_secret_ref.secret_access_key_key,
    } == set(creds)
    hook = spec.webhooks.secret_ref
    assert hook is not None
    secret = secrets[hook.name][hook.key]
    assert secret.startswith("whsec_")
    assert base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    assert spec.tenants is not None
    toml = secrets[spec.tenants.secret_ref.name][spec.tenants.secret_ref.key]
    assert tenants.parse(toml).tenants  # the service's own parser takes it
