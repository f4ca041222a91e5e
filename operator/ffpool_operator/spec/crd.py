"""The CustomResourceDefinition, generated from the pydantic models (pool.py).

`python -m ffpool_operator.spec.crd > crds/ffmpegpools.ffpool.dev.yaml`; a unit test fails when the
committed file drifts from the models.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml

from ffpool import names
from ffpool_operator.spec.pool import PoolSpec, PoolStatus
from ffpool_operator.spec.rules import VALIDATIONS

CRD_NAME = f"{names.CRD_PLURAL}.{names.API_GROUP}"
_DROP = {"title", "description_", "$defs"}


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_resolve(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _resolve(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
    return {k: _resolve(v, defs) for k, v in node.items() if k not in _DROP}


def _nullable(node: dict[str, Any]) -> dict[str, Any]:
    """pydantic's `anyOf: [X, null]` → X with `nullable: true` (structural schemas forbid anyOf
    without types at the same level)."""
    options = [o for o in node.pop("anyOf") if o.get("type") != "null"]
    if len(options) != 1:
        raise ValueError(f"unsupported union in CRD schema: {options}")
    merged = {**options[0], **node, "nullable": True}
    if merged.get("default", 0) is None:
        del merged["default"]
    return merged


def structural(node: Any) -> Any:
    """Rewrite a JSON schema (draft 2020) into a Kubernetes structural OpenAPI v3 schema."""
    if isinstance(node, list):
        return [structural(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if "anyOf" in node:
        node = _nullable(node)
    if "const" in node:
        node["enum"] = [node.pop("const")]
    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if not isinstance(node.get(bound, False), bool):
            node[limit] = node[bound]
            node[bound] = True
    if node.get("additionalProperties") is True or (
        node.get("type") == "object"
        and "properties" not in node
        and "additionalProperties" not in node
    ):
        node.pop("additionalProperties", None)
        node["x-kubernetes-preserve-unknown-fields"] = True
    if "properties" in node:
        node.pop("additionalProperties", None)
    if isinstance(node.get("default"), dict | list):
        del node["default"]  # nested defaults are the models' job, not the apiserver's
    # CEL rules (rules.py) are data, not schemas: copied as they are.
    return {k: v if k == VALIDATIONS else structural(v) for k, v in node.items()}


def model_schema(model: type[PoolSpec] | type[PoolStatus]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    result: dict[str, Any] = structural(_resolve(raw, raw.get("$defs", {})))
    return result


def _printer_columns() -> list[dict[str, Any]]:
    def col(name: str, type_: str, path: str, **extra: Any) -> dict[str, Any]:
        return {"name": name, "type": type_, "jsonPath": path, **extra}

    return [
        col(
            "Workers",
            "integer",
            ".status.workers.current",
            description="Worker pods that exist (the worker Deployment's status.replicas)",
        ),
        col("Desired", "integer", ".status.workers.desired"),
        col("Queue", "integer", ".status.queue.ready", description="Jobs waiting"),
        col("In-Flight", "integer", ".status.queue.unacked", priority=1),
        col("Ready", "string", '.status.conditions[?(@.type=="Ready")].status'),
        col(
            "Paused",
            "boolean",
            ".status.autoscaling.paused",
            description="Autoscaling paused by the autoscaling.ffpool.dev/paused annotations",
        ),
        col(
            "Fallback",
            "boolean",
            ".status.autoscaling.fallback",
            description="fallbackReplicas in force: metrics unavailable for several polls",
        ),
        col(
            "Quorum",
            "string",
            '.status.conditions[?(@.type=="QuorumHealthy")].reason',
            priority=1,
            description="Quorum queues' members: AllMembersOnline, MembersOffline or"
            " MajorityUnavailable (unset for classic queues)",
        ),
        col("Reason", "string", ".status.lastScaleReason", priority=1),
        col("Age", "date", ".metadata.creationTimestamp"),
    ]


def crd() -> dict[str, Any]:
    status = model_schema(PoolStatus)
    status["x-kubernetes-preserve-unknown-fields"] = True  # kopf's bookkeeping lives here too
    schema = {
        "type": "object",
        "required": ["spec"],
        "properties": {"spec": model_schema(PoolSpec), "status": status},
    }
    version = {
        "name": names.API_VERSION,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": schema},
        "subresources": {
            "status": {},
            "scale": {
                "specReplicasPath": ".spec.workers.replicas",
                "statusReplicasPath": ".status.workers.current",
                "labelSelectorPath": ".status.workers.selector",
            },
        },
        "additionalPrinterColumns": _printer_columns(),
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME, "labels": {names.LABEL_NAME: "ffpool"}},
        "spec": {
            "group": names.API_GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": names.CRD_KIND,
                "plural": names.CRD_PLURAL,
                "singular": names.CRD_SINGULAR,
                "shortNames": [names.CRD_SHORT_NAME],
                "categories": ["ffpool"],
            },
            "versions": [version],
        },
    }


def render() -> str:
    header = (
        "# Generated by `python -m ffpool_operator.spec.crd` from ffpool_operator/spec/pool.py.\n"
    )
    return header + yaml.safe_dump(crd(), sort_keys=False, allow_unicode=True, width=100)


if __name__ == "__main__":
    sys.stdout.write(render())
