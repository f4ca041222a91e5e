"""The generated CRD on the real API server: it is accepted (structural schema, CEL rules within
their cost budget), and invalid pools are refused by the API server itself, each with the message
the models give it (bounds and enums from field types, cross-field rules as CEL: rules.py), while
the example pool is accepted."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from ffpool import names
from ffpool.topology import BANDS_OVER_LEVELS
from ffpool_operator.spec import crd
from ffpool_operator.spec.pool import PoolSpec
from ffpool_operator.spec.rules import VALIDATIONS
from tests.cluster.controlplane import ROOT, ControlPlane

pytestmark = [pytest.mark.cluster]
NS = "ffpool-crd"
CRD_FILE = ROOT / "crds" / "ffmpegpools.ffpool.dev.yaml"
SPEC = {
    "image": "ffpool:test",
    "rabbitmq": {"secretName": "rmq"},
    "storage": {"claimName": "m"},
    "auth": {"allowAnonymous": True},
}

# (case, spec overrides, where, the rule's message or its start). Every CEL rule has a case.
CEL_CASES = [
    (
        "min-over-max",
        {"autoscaling": {"minReplicas": 5, "maxReplicas": 2}},
        "spec.autoscaling",
        "minReplicas must not exceed maxReplicas",
    ),
    (
        "grace-not-over-drain",
        {"workers": {"drainSeconds": 60, "terminationGracePeriodSeconds": 60}},
        "spec.workers",
        "terminationGracePeriodSeconds must exceed drainSeconds",
    ),
    (
        "same-service-ports",
        {"servers": {"service": {"port": 8081}}},
        "spec.servers.service",
        "port and httpPort must differ",
    ),
    (
        "lower-case-env",
        {"env": {"job_timeout_seconds": "60"}},
        "spec.env",
        "env names must be upper-case settings names",
    ),
    (
        "same-ops-port",
        {"servers": {"service": {"opsPort": 8081}}},
        "spec.servers.service",
        "opsPort must differ from port and httpPort",
    ),
    ("no-auth", {"auth": {}}, "spec", "auth: set exactly one of auth.tokensSecret"),
    (
        "both-auth",
        {"auth": {"tokensSecret": "toks", "allowAnonymous": True}},
        "spec",
        "auth: set exactly one of auth.tokensSecret",
    ),
    ("no-storage", {"storage": {}}, "spec.storage", "set exactly one of claimName"),
    (
        "both-storages",
        {"storage": {"claimName": "m", "s3": {"bucket": "ffpool-media"}}},
        "spec.storage",
        "set exactly one of claimName",
    ),
    (
        "scratch-with-pvc",
        {"storage": {"claimName": "m", "scratchSizeLimit": "1Gi"}},
        "spec.storage",
        "scratchSizeLimit is for s3 storage only",
    ),
    (
        "both-budget-limits",
        {"servers": {"podDisruptionBudget": {"maxUnavailable": 1, "minAvailable": 1}}},
        "spec.servers.podDisruptionBudget",
        "set at most one of maxUnavailable and minAvailable",
    ),
    # An int-or-string field's schema is the marker alone: a CEL rule on the field checks it.
    *(
        (
            f"budget-{case}",
            {"servers": {"podDisruptionBudget": {"maxUnavailable": value}}},
            "spec.servers.podDisruptionBudget.maxUnavailable",
            "a count from 0 to 10000 or a percentage from 0% to 100%",
        )
        for case, value in [("abc", "abc"), ("space", "25 %"), ("150", "150%"), ("neg", -1)]
    ),
    (
        "budget-min-abc",
        {"workers": {"podDisruptionBudget": {"minAvailable": "abc"}}},
        "spec.workers.podDisruptionBudget.minAvailable",
        "a count from 0 to 10000 or a percentage from 0% to 100%",
    ),
    (
        "budget-max-zero",
        {"servers": {"podDisruptionBudget": {"maxUnavailable": 0}}},
        "spec.servers.podDisruptionBudget",
        "maxUnavailable 0 would block every drain",
    ),
    (
        "budget-max-zero-percent",
        {"workers": {"podDisruptionBudget": {"maxUnavailable": "0%"}}},
        "spec.workers.podDisruptionBudget",
        "maxUnavailable 0 would block every drain",
    ),
    (
        "budget-min-all",
        {"servers": {"podDisruptionBudget": {"minAvailable": "100%"}}},
        "spec.servers.podDisruptionBudget",
        "minAvailable 100% would block every drain",
    ),
    (
        "budget-min-servers",
        {"servers": {"replicas": 2, "podDisruptionBudget": {"minAvailable": 2}}},
        "spec.servers",
        "podDisruptionBudget.minAvailable at or above replicas would block every drain",
    ),
    (
        "budget-min-workers",
        {"workers": {"podDisruptionBudget": {"enabled": True, "minAvailable": 1}}},
        "spec",
        "workers.podDisruptionBudget.minAvailable at or above autoscaling.minReplicas",
    ),
    (
        "bands-over-levels",
        {"topology": {"queueType": "quorum", "maxPriority": 1, "priorityBands": 3}},
        "spec.topology",
        BANDS_OVER_LEVELS,
    ),
]
# (case, spec overrides, what the API server says): bounds, enums and patterns of field types.
SCHEMA_CASES = [
    (
        "negative-replicas",
        {"workers": {"replicas": -1}},
        "spec.workers.replicas in body should be greater than or equal to 0",
    ),
    (
        "too-many-workers",
        {"autoscaling": {"maxReplicas": 1001}},
        "spec.autoscaling.maxReplicas in body should be less than or equal to 1000",
    ),
    (
        "zero-timeout",
        {"rabbitmq": {"secretName": "rmq", "timeoutSeconds": 0}},
        "spec.rabbitmq.timeoutSeconds in body should be greater than 0",
    ),
    (
        "pull-policy",
        {"imagePullPolicy": "Sometimes"},
        'spec.imagePullPolicy: Unsupported value: "Sometimes"',
    ),
    (
        "deletion-policy",
        {"topology": {"deletionPolicy": "Delete"}},
        'spec.topology.deletionPolicy: Unsupported value: "Delete"',
    ),
    (
        "address-port",
        {"rabbitmq": {"secretName": "rmq", "addresses": ["rabbit-0.rabbit:99999"]}},
        "spec.rabbitmq.addresses[0] in body should match",
    ),
    (
        "claim-name",
        {"storage": {"claimName": "Media_Claim"}},
        "spec.storage.claimName in body should match",
    ),
    (
        "bucket-name",
        {"storage": {"s3": {"bucket": "Media_Bucket"}}},
        "spec.storage.s3.bucket in body should match",
    ),
    (
        "allow-read-list",
        {"storage": {"s3": {"bucket": "media", "allowRead": ["s3://a-b/x,s3://c-d/"]}}},
        "spec.storage.s3.allowRead[0] in body should match",
    ),
    (
        "zero-fallback-threshold",
        {"autoscaling": {"fallbackFailureThreshold": 0}},
        "spec.autoscaling.fallbackFailureThreshold in body should be greater than or equal to 1",
    ),
]


def pool(name: str, spec: dict[str, Any]) -> str:
    body = {
        "apiVersion": f"{names.API_GROUP}/{names.API_VERSION}",
        "kind": names.CRD_KIND,
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    }
    return json.dumps(body)  # JSON, not YAML: no YAML 1.1 surprises (`y` → true) in the cases


@pytest.fixture(scope="module")
def established(control_plane: ControlPlane) -> Iterator[None]:
    """The CRD as users install it (`kubectl apply --server-side`, charts/ffpool-operator/README).
    `--force-conflicts`: the chart may have installed it already, with Helm as its manager."""
    control_plane.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_FILE))
    control_plane.kubectl(
        "wait", "--for=condition=Established", f"crd/{crd.CRD_NAME}", "--timeout=60s"
    )
    control_plane.kubectl("create", "namespace", NS)
    yield
    control_plane.kubectl("delete", "namespace", NS, "--wait=false")


def refusal(plane: ControlPlane, case: str, overrides: dict[str, Any]) -> str:
    answer = plane.kubectl(
        "apply",
        "--server-side",
        "-f",
        "-",
        input_text=pool(case, {**SPEC, **overrides}),
        check=False,
    )
    assert "serverside-applied" not in answer, f"{case}: accepted"
    return answer


def _leaf(node: Any, path: str = "spec") -> tuple[str, Any]:
    """The one value a case sets, and its path."""
    while isinstance(node, dict) and len(node) == 1:
        [(key, node)] = node.items()
        path = f"{path}.{key}"
    return path, node


def _cel_refusals() -> list[tuple[str, dict[str, Any], str]]:
    """A rule on an object says `Invalid value: message`; one on the scalar field a case sets
    (the budgets' int-or-string limits) shows the value too: `Invalid value: "abc": message`."""
    out = []
    for case, overrides, where, message in CEL_CASES:
        path, value = _leaf(overrides)
        shown = "" if isinstance(value, dict) or path != where else f"{json.dumps(value)}: "
        out.append((case, overrides, f"{where}: Invalid value: {shown}{message}"))
    return out


@pytest.mark.parametrize(("case", "overrides", "expected"), _cel_refusals() + SCHEMA_CASES)
def test_the_api_server_refuses_an_invalid_pool(
    control_plane: ControlPlane,
    established: None,
    case: str,
    overrides: dict[str, Any],
    expected: str,
) -> None:
    assert expected in refusal(control_plane, case, overrides)


@pytest.mark.parametrize(("case", "overrides", "where", "message"), CEL_CASES)
def test_the_operator_refuses_the_same_pools_with_the_same_message(
    case: str, overrides: dict[str, Any], where: str, message: str
) -> None:
    """One rule, two enforcers: a pool stored before a rule existed still fails in the operator."""
    with pytest.raises(ValidationError, match=message):
        PoolSpec.model_validate({**SPEC, **overrides})


def _messages(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        yield from (rule["message"] for rule in node.get(VALIDATIONS, []))
        for key, child in node.items():
            if key != VALIDATIONS:
                yield from _messages(child)
    elif isinstance(node, list):
        for child in node:
            yield from _messages(child)


def test_every_cel_rule_has_a_case() -> None:
    messages = sorted(_messages(crd.crd()))
    covered = sorted(m for m in messages if any(m.startswith(c[-1]) for c in CEL_CASES))
    assert covered == messages


@pytest.mark.parametrize("example", ["ffmpegpool.yaml", "ffmpegpool-s3.yaml"])
def test_the_example_pools_are_accepted(
    control_plane: ControlPlane, established: None, example: str
) -> None:
    """Server-side dry run: the whole validation (schema, CEL, admission), nothing stored, so no
    operator elsewhere in the session starts reconciling it."""
    docs = yaml.safe_load_all(Path(ROOT / "examples" / example).read_text())
    [example] = [copy.deepcopy(d) for d in docs if d and d["kind"] == names.CRD_KIND]
    example["metadata"]["namespace"] = NS
    answer = control_plane.kubectl(
        "apply", "--server-side", "--dry-run=server", "-f", "-", input_text=json.dumps(example)
    )
    assert "serverside-applied (server dry run)" in answer


def test_budgets_that_leave_a_pod_to_evict_are_accepted(
    control_plane: ControlPlane, established: None
) -> None:
    """The budget rules refuse only what blocks every drain; ClusterDefault (leave the eviction
    policy out, for clusters before 1.27) is a valid value."""
    budgets = {
        "servers": {
            "replicas": 3,
            "podDisruptionBudget": {
                "minAvailable": 2,
                "unhealthyPodEvictionPolicy": "ClusterDefault",
            },
        },
        "workers": {"podDisruptionBudget": {"enabled": True, "minAvailable": 1}},
        "autoscaling": {"minReplicas": 2},
    }
    answer = control_plane.kubectl(
        "apply",
        "--server-side",
        "--dry-run=server",
        "-o",
        "json",
        "-f",
        "-",
        input_text=pool("budget-edges", {**SPEC, **budgets}),
    )
    stored = json.loads(answer)["spec"]
    assert stored["servers"]["podDisruptionBudget"]["unhealthyPodEvictionPolicy"] == (
        "ClusterDefault"
    )
    PoolSpec.model_validate(stored)  # and the operator takes what the API server stored
