from pathlib import Path
from typing import Any

import jsonschema
import pytest

from ffpool_operator.spec import crd
from tests.operator_harness.samples import spec_dict

CRD_FILE = Path(__file__).parents[2] / "crds" / "ffmpegpools.ffpool.dev.yaml"


def _schema() -> dict[str, Any]:
    version = crd.crd()["spec"]["versions"][0]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def test_committed_crd_matches_the_models() -> None:
    assert CRD_FILE.read_text() == crd.render(), (
        "crds/ is stale: run "
        "`python -m ffpool_operator.spec.crd > crds/ffmpegpools.ffpool.dev.yaml`"
    )


def _walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    if not isinstance(node, dict):
        return []
    out = [(path, node)]
    for key, child in node.get("properties", {}).items():
        out += _walk(child, f"{path}.{key}")
    if isinstance(node.get("items"), dict):
        out += _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        out += _walk(node["additionalProperties"], f"{path}{{}}")
    return out


def test_schema_is_structural() -> None:
    for path, node in _walk(_schema()):
        # Kubernetes' IntOrString (a PodDisruptionBudget's limits) is the one typeless field
        # a structural schema allows besides preserved unknown fields.
        assert (
            "type" in node
            or node.get("x-kubernetes-preserve-unknown-fields")
            or node.get("x-kubernetes-int-or-string")
        ), path
        for banned in ("anyOf", "$ref", "const", "title", "$defs"):
            assert banned not in node, f"{path}: {banned}"
        assert not ("properties" in node and "additionalProperties" in node), path
        assert isinstance(node.get("exclusiveMinimum", True), bool), path  # OpenAPI 3.0 form


def test_crd_has_what_kopf_and_kubectl_need() -> None:
    body = crd.crd()
    version = body["spec"]["versions"][0]
    assert body["spec"]["names"]["shortNames"] == ["ffp"]
    assert version["subresources"]["scale"]["specReplicasPath"] == ".spec.workers.replicas"
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]
    assert status["x-kubernetes-preserve-unknown-fields"] is True
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert {"Workers", "Desired", "Queue", "Ready", "Age"} <= set(columns)
    assert columns["Paused"] == ".status.autoscaling.paused"
    assert columns["Fallback"] == ".status.autoscaling.fallback"
    # One notion of "current workers" (the Deployment's status.replicas): kubectl get and
    # the scale subresource (kubectl scale, HPA-style readers) must agree.
    assert columns["Workers"] == version["subresources"]["scale"]["statusReplicasPath"]


def test_sample_resource_validates_against_the_crd_schema() -> None:
    validator = jsonschema.Draft4Validator(_schema())  # OpenAPI 3.0 schemas are draft-4 flavoured
    body = {"apiVersion": "ffpool.dev/v1alpha1", "kind": "FFmpegPool", "spec": spec_dict()}
    validator.validate(body)
    body["spec"]["workers"] = {"replicas": -1}
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(body)
    body["spec"]["rabbitmq"] = {"secretName": "rmq", "timeoutSeconds": 0}
    body["spec"]["workers"] = {"replicas": 1, "bogus": 1}  # pruned by the apiserver, not an error
    with pytest.raises(jsonschema.ValidationError, match="minimum"):
        validator.validate(body)
