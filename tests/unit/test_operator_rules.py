"""Cross-field rules (ffpool_operator/spec/rules.py) reach the generated CRD as CEL, and pydantic
enforces the same rules with the same messages. The real API server evaluating them is in
tests/cluster/test_crd_validation.py; these checks run without a cluster."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from ffpool_operator.spec import crd
from ffpool_operator.spec.pool import PoolSpec
from ffpool_operator.spec.rules import VALIDATIONS
from tests.operator_harness.samples import spec_dict

# Keywords the API server forbids in a CRD schema (apiextensions' schema validation); the
# committed CRD once had `patternProperties` and no real API server would take it.
FORBIDDEN = {"patternProperties", "additionalItems", "definitions", "dependencies", "id", "$ref"}
LOOPS = (".all(", ".exists(", ".exists_one(", ".map(", ".filter(")


def _nodes(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    if not isinstance(node, dict):
        return []
    out = [(path, node)]
    for key, child in node.get("properties", {}).items():
        out += _nodes(child, f"{path}.{key}")
    for key in ("items", "additionalProperties"):
        out += _nodes(node.get(key), f"{path}[]")
    return out


def _spec_nodes() -> dict[str, dict[str, Any]]:
    version = crd.crd()["spec"]["versions"][0]
    return dict(_nodes(version["schema"]["openAPIV3Schema"]["properties"]["spec"], "spec"))


def test_rules_sit_where_the_models_declare_them() -> None:
    rules = {
        path: [r["message"] for r in node[VALIDATIONS]]
        for path, node in _spec_nodes().items()
        if VALIDATIONS in node
    }
    assert set(rules) == {
        "spec",
        "spec.autoscaling",
        "spec.workers",
        "spec.servers.service",
        "spec.env",
        "spec.topology",
        "spec.storage",
        "spec.servers",
        "spec.servers.podDisruptionBudget",
        "spec.workers.podDisruptionBudget",
        "spec.servers.podDisruptionBudget.maxUnavailable",
        "spec.servers.podDisruptionBudget.minAvailable",
        "spec.workers.podDisruptionBudget.maxUnavailable",
        "spec.workers.podDisruptionBudget.minAvailable",
    }
    assert [m.split(" (")[0] for m in rules["spec.storage"]] == [
        "set exactly one of claimName",
        "scratchSizeLimit is for s3 storage only: with claimName runs use the volume",
    ]
    assert rules["spec.autoscaling"] == ["minReplicas must not exceed maxReplicas"]
    # On the spec, not on `auth`: a rule on an absent object never runs, and a pool without
    # `auth` must be refused too.
    assert [m.split(":")[0].split(" ")[0] for m in rules["spec"]] == [
        "auth",
        "workers.podDisruptionBudget.minAvailable",
    ]
    assert [m.split(" would")[0] for m in rules["spec.servers.podDisruptionBudget"]] == [
        "set at most one of maxUnavailable and minAvailable (neither means maxUnavailable 1)",
        "maxUnavailable 0",
        "minAvailable 100%",
    ]


def test_budget_limits_are_checked_by_the_api_server() -> None:
    """An int-or-string schema is that marker alone: a CEL rule bounds the value, or "abc"
    would be stored and the operator would refuse the whole pool."""
    nodes = _spec_nodes()
    for component in ("servers", "workers"):
        for limit in ("maxUnavailable", "minAvailable"):
            node = nodes[f"spec.{component}.podDisruptionBudget.{limit}"]
            assert node["x-kubernetes-int-or-string"] is True
            [rule] = node[VALIDATIONS]
            assert rule["rule"] == (
                "type(self) == int ? self >= 0 && self <= 10000"
                " : self.matches('^(100|[1-9]?[0-9])%$')"
            )
            assert "percentage" in rule["message"]
    [servers] = nodes["spec.servers"][VALIDATIONS]
    assert "self.podDisruptionBudget.minAvailable >= self.replicas" in servers["rule"]


def test_the_schema_uses_nothing_the_api_server_forbids() -> None:
    for path, node in _spec_nodes().items():
        assert not FORBIDDEN & set(node), path
        for rule in node.get(VALIDATIONS, []):
            assert set(rule) == {"rule", "message"}, (path, rule)  # 1.25-compatible fields
            if any(loop in rule["rule"] for loop in LOOPS):
                # A loop's estimated cost grows with the collection: bound it (rules.py).
                assert "maxProperties" in node or "maxItems" in node, path


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"autoscaling": {"minReplicas": 3, "maxReplicas": 2}}, "must not exceed maxReplicas"),
        ({"workers": {"drainSeconds": 60, "terminationGracePeriodSeconds": 60}}, "must exceed"),
        ({"servers": {"service": {"port": 8081}}}, "port and httpPort must differ"),
        ({"servers": {"service": {"opsPort": 80}}}, "opsPort must differ"),
        ({"auth": {}}, "exactly one of auth.tokensSecret"),
        ({"auth": {"allowAnonymous": False}}, "exactly one of auth.tokensSecret"),
        ({"auth": {"tokensSecret": "t", "allowAnonymous": True}}, "exactly one of"),
        ({"auth": {"allowAnonymous": True, "allowedOrigins": ["a,b"]}}, "pattern"),
        ({"env": {"timeout": "1"}}, "env names must be upper-case"),
        ({"env": {f"K{i}": "v" for i in range(129)}}, "at most 128 items"),
        ({"storage": {}}, "set exactly one of claimName"),
        ({"storage": {"claimName": "m", "s3": {"bucket": "b-1"}}}, "set exactly one of"),
        ({"storage": {"claimName": "m", "scratchSizeLimit": "1Gi"}}, "for s3 storage only"),
        ({"storage": {"s3": {"bucket": "Bad_Bucket"}}}, "pattern"),
        ({"storage": {"s3": {"bucket": "b-1", "allowRead": ["s3://a-b/x,y"]}}}, "pattern"),
        ({"storage": {"s3": {"bucket": "b-1", "endpoint": "https://h:9000/path"}}}, "pattern"),
        ({"storage": {"s3": {"bucket": "b-1", "prefix": "/lead"}}}, "pattern"),
        ({"storage": {"s3": {"bucket": "b-1"}, "scratchSizeLimit": "lots"}}, "pattern"),
        ({"webhooks": {"url": "ftp://x"}}, "pattern"),
        ({"tenants": {"secretRef": {"name": "t"}}}, "key"),
        (
            {"servers": {"podDisruptionBudget": {"maxUnavailable": 1, "minAvailable": 1}}},
            "at most one of maxUnavailable and minAvailable",
        ),
        ({"workers": {"podDisruptionBudget": {"minAvailable": "150%"}}}, "a count from 0"),
        ({"servers": {"podDisruptionBudget": {"maxUnavailable": "abc"}}}, "or a percentage"),
        ({"servers": {"podDisruptionBudget": {"maxUnavailable": "25 %"}}}, "or a percentage"),
        ({"servers": {"podDisruptionBudget": {"maxUnavailable": -1}}}, "a count from 0"),
        ({"servers": {"podDisruptionBudget": {"maxUnavailable": 0}}}, "block every drain"),
        ({"workers": {"podDisruptionBudget": {"maxUnavailable": "0%"}}}, "block every drain"),
        ({"servers": {"podDisruptionBudget": {"minAvailable": "100%"}}}, "block every drain"),
        ({"servers": {"podDisruptionBudget": {"minAvailable": 2}}}, "at or above replicas"),
        (
            {"servers": {"replicas": 3, "podDisruptionBudget": {"minAvailable": 5}}},
            "at or above replicas",
        ),
        (
            {"workers": {"podDisruptionBudget": {"enabled": True, "minAvailable": 1}}},
            "at or above autoscaling.minReplicas",
        ),
        (
            {
                "workers": {"podDisruptionBudget": {"enabled": True, "minAvailable": 2}},
                "autoscaling": {"minReplicas": 2},
            },
            "at or above autoscaling.minReplicas",
        ),
        (
            {
                "workers": {
                    "replicas": 3,
                    "podDisruptionBudget": {"enabled": True, "minAvailable": 3},
                },
                "autoscaling": {"enabled": False, "minReplicas": 5},
            },
            "or workers.replicas without autoscaling",
        ),
        ({"autoscaling": {"fallbackFailureThreshold": 0}}, "greater than or equal to 1"),
        # The pods' own parser: a port they would refuse (and crash-loop on) is refused here.
        ({"rabbitmq": {"secretName": "rmq", "addresses": ["rmq-1:0"]}}, "pattern"),
        ({"rabbitmq": {"secretName": "rmq", "addresses": ["rmq-1:99999"]}}, "pattern"),
        ({"rabbitmq": {"secretName": "rmq", "addresses": ["-rmq-:5672"]}}, "not a host or IP"),
        (
            {"topology": {"queueType": "quorum", "maxPriority": 3, "priorityBands": 5}},
            "must not exceed the priority levels",
        ),
    ],
)
def test_pydantic_enforces_the_same_rules(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PoolSpec.model_validate(spec_dict(**overrides))


def test_valid_edges_pass() -> None:
    PoolSpec.model_validate(
        spec_dict(
            autoscaling={"minReplicas": 2, "maxReplicas": 2},
            workers={"drainSeconds": 60, "terminationGracePeriodSeconds": 61},
            servers={"service": {"port": 8080, "httpPort": 8081}},
            env={"_PRIVATE": "1", "JOB_TIMEOUT_SECONDS": "60"},
        )
    )
    PoolSpec.model_validate(spec_dict(auth={"allowAnonymous": True}))
    budgets = {"servers": {"podDisruptionBudget": {"minAvailable": "50%"}}}
    PoolSpec.model_validate(spec_dict(workers={"podDisruptionBudget": {"maxUnavailable": 2}}))
    PoolSpec.model_validate(spec_dict(**budgets))
    # Budgets that leave a pod to evict; a disabled one blocks nothing.
    servers = {"replicas": 3, "podDisruptionBudget": {"minAvailable": 2}}
    PoolSpec.model_validate(spec_dict(servers=servers))
    PoolSpec.model_validate(
        spec_dict(servers={"replicas": 0, "podDisruptionBudget": {"minAvailable": 1}})
    )
    workers = {"podDisruptionBudget": {"enabled": True, "minAvailable": 1}}
    PoolSpec.model_validate(spec_dict(workers=workers, autoscaling={"minReplicas": 2}))
    off = {"podDisruptionBudget": {"enabled": False, "minAvailable": 1}}
    PoolSpec.model_validate(spec_dict(workers=off))
    PoolSpec.model_validate(spec_dict(workers={"podDisruptionBudget": {"minAvailable": 0}}))
    PoolSpec.model_validate(spec_dict(auth={"tokensSecret": "t", "allowAnonymous": False}))
    s3 = {"bucket": "b-1", "endpoint": "http://[fd00::1]:9000", "prefix": ""}
    PoolSpec.model_validate(spec_dict(storage={"s3": s3, "scratchSizeLimit": "500Mi"}))


def test_both_storage_forms_parse() -> None:
    """`storage: {claimName: ...}` stays valid as it was; `s3` is the other form."""
    pvc = PoolSpec.model_validate(spec_dict(storage={"claimName": "media"})).storage
    assert (pvc.claim_name, pvc.s3, pvc.mount_path) == ("media", None, "/media")
    body = {"s3": {"bucket": "ffpool-media", "credentialsSecretRef": {"name": "ffpool-s3"}}}
    bucket = PoolSpec.model_validate(spec_dict(storage=body)).storage
    assert bucket.claim_name is None
    assert bucket.s3 is not None
    assert (bucket.s3.prefix, bucket.s3.region, bucket.s3.endpoint) == ("ffpool", "us-east-1", None)
    assert bucket.s3.credentials_secret_ref is not None
    assert bucket.s3.credentials_secret_ref.access_key_id_key == "accessKeyId"
    assert bucket.scratch_limit == "20Gi"


def test_a_pool_without_auth_is_refused() -> None:
    body = {k: v for k, v in spec_dict().items() if k != "auth"}
    with pytest.raises(ValidationError, match=r"exactly one of auth\.tokensSecret"):
        PoolSpec.model_validate(body)


def test_the_crd_refuses_bad_broker_ports_and_too_many_bands() -> None:
    import re

    nodes = _spec_nodes()
    pattern = nodes["spec.rabbitmq.addresses[]"]["pattern"]
    for good in ("rmq-1.rmq:5672", "[fd00::2]:5671", "h:1", "h:65535"):
        assert re.fullmatch(pattern, good), good
    for bad in ("h:0", "h:65536", "h:99999", "h:05672", "h"):
        assert not re.fullmatch(pattern, bad), bad
    (rule,) = nodes["spec.topology"][VALIDATIONS]
    assert "self.priorityBands" in rule["rule"]
    assert "self.maxPriority" in rule["rule"]
