"""The Helm chart rendered by the real Helm engine (helm-python-sdk), offline: lint, defaults,
variations, the values schema, the CRD copy and NOTES.txt."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml

from ffpool_operator import main as operator_main
from tests import helmchart
from tests.helmchart import CHART, ROOT, manifests, of_kind

FULLNAME = helmchart.RELEASE  # the release name already contains the chart name


def _deployment(values: dict[str, Any] | None = None) -> dict[str, Any]:
    [deployment] = of_kind(manifests(values), "Deployment")
    return deployment


def _container(values: dict[str, Any] | None = None) -> dict[str, Any]:
    containers: list[dict[str, Any]] = _deployment(values)["spec"]["template"]["spec"]["containers"]
    [container] = containers
    return container


@pytest.mark.parametrize("variant", sorted(helmchart.VARIANTS))
def test_lint_passes_strict(variant: str) -> None:
    report = helm_python.lint(
        CHART, helmchart.VARIANTS[variant], strict=True, namespace=helmchart.NAMESPACE
    )
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == [], report
    assert problems == [], problems


def test_default_render_has_the_operator_pieces() -> None:
    kinds = sorted(o["kind"] for o in manifests())
    assert kinds == ["ClusterRole", "ClusterRoleBinding", "Deployment", "ServiceAccount"]
    for obj in manifests():
        assert obj["metadata"]["name"] == FULLNAME
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == helmchart.RELEASE
        assert labels["app.kubernetes.io/managed-by"] == "Helm"


def test_single_replica_recreate_with_liveness_on_kopf_endpoint() -> None:
    deployment = _deployment()
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    container = _container()
    probe = container["livenessProbe"]["httpGet"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert probe == {"path": "/healthz", "port": "health"}
    assert f"--liveness=http://0.0.0.0:{ports['health']}/healthz" in container["args"]
    assert f"--metrics-port={ports['metrics']}" in container["args"]
    assert container["image"] == "ghcr.io/ffpool/ffpool-operator:0.1.0"


def test_pod_selector_matches_template_labels() -> None:
    spec = _deployment()["spec"]
    selector = spec["selector"]["matchLabels"]
    assert selector.items() <= spec["template"]["metadata"]["labels"].items()


def _parsed_operator_args(args: list[str], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def fake_run(namespaces: list[str], **kwargs: Any) -> None:
        seen.update(kwargs, namespaces=list(namespaces))

    monkeypatch.setattr(operator_main, "run", fake_run)
    operator_main.main(args)
    return seen


def test_operator_cli_accepts_the_rendered_args(monkeypatch: pytest.MonkeyPatch) -> None:
    """The chart's args go to `python -m ffpool_operator.main` (the image's entrypoint)."""
    seen = _parsed_operator_args(_container()["args"], monkeypatch)
    assert seen == {
        "namespaces": [],
        "liveness": "http://0.0.0.0:8080/healthz",
        "metrics_port": 9090,
        "log_level": "INFO",
    }


def test_namespaced_scope_watches_only_its_namespaces(monkeypatch: pytest.MonkeyPatch) -> None:
    values = helmchart.VARIANTS["namespaced"]
    objs = manifests(values)
    roles = of_kind(objs, "Role")
    bindings = of_kind(objs, "RoleBinding")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["batch", "media"]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["batch", "media"]
    for binding in bindings:
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": FULLNAME, "namespace": helmchart.NAMESPACE}
        ]
    [observer] = of_kind(objs, "ClusterRole")
    assert observer["metadata"]["name"] == f"{FULLNAME}-observer"
    assert all(rule["verbs"] == ["list", "watch"] for rule in observer["rules"])
    seen = _parsed_operator_args(_container(values)["args"], monkeypatch)
    assert seen["namespaces"] == ["media", "batch"]


def test_namespaced_scope_defaults_to_release_namespace() -> None:
    roles = of_kind(manifests(helmchart.VARIANTS["namespaced-release-ns"]), "Role")
    assert [r["metadata"]["namespace"] for r in roles] == [helmchart.NAMESPACE]
    args = _container(helmchart.VARIANTS["namespaced-release-ns"])["args"]
    assert f"--namespace={helmchart.NAMESPACE}" in args


def test_metrics_service_targets_the_operator_pod() -> None:
    assert of_kind(manifests(), "Service") == []
    values = helmchart.VARIANTS["metrics"]
    [service] = of_kind(manifests(values), "Service")
    assert service["metadata"]["annotations"] == {"prometheus.io/scrape": "true"}
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}
    ]
    pod_labels = _deployment(values)["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()


def test_custom_image_and_scheduling() -> None:
    values = helmchart.VARIANTS["custom-image"]
    pod = _deployment(values)["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "registry.example.com/ffpool/operator:1.2.3"
    assert container["imagePullPolicy"] == "Always"
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert {"name": "TZ", "value": "UTC"} in container["env"]
    assert "--log-level=DEBUG" in container["args"]
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}


def test_digest_pins_the_image() -> None:
    digest = "sha256:" + "ab" * 32
    container = _container({"image": {"digest": digest}})
    assert container["image"] == f"ghcr.io/ffpool/ffpool-operator@{digest}"


def test_existing_service_account_and_no_rbac() -> None:
    values = {"serviceAccount": {"create": False, "name": "ops"}, "rbac": {"create": False}}
    objs = manifests(values)
    assert [o["kind"] for o in objs] == ["Deployment"]
    assert objs[0]["spec"]["template"]["spec"]["serviceAccountName"] == "ops"


def test_existing_service_account_needs_a_name() -> None:
    with pytest.raises(helm_python.HelmRenderError, match=r"serviceAccount\.name is required"):
        helmchart.render({"serviceAccount": {"create": False}})


@pytest.mark.parametrize(
    ("values", "where"),
    [
        ({"replicaCount": 2}, "additional properties 'replicaCount'"),
        ({"image": {"registry": "x"}}, "/image"),
        ({"rbac": {"scope": "everything"}}, "/rbac/scope"),
        ({"rbac": {"create": "yes"}}, "/rbac/create"),
        ({"rbac": {"namespaces": ["Not_A_Name"]}}, "/rbac/namespaces/0"),
        ({"metrics": {"service": {"port": "9090"}}}, "/metrics/service/port"),
        ({"metrics": {"service": {"port": 70000}}}, "/metrics/service/port"),
        ({"securityContext": {"privilegd": True}}, "/securityContext"),
        ({"podSecurityContext": {"seccompProfile": {"type": "Off"}}}, "/podSecurityContext"),
        ({"resources": {"limits": {"memory": "lots"}}}, "/resources/limits/memory"),
        ({"operator": {"logLevel": "TRACE"}}, "/operator/logLevel"),
        ({"operator": {"extraEnv": [{"name": "A"}]}}, "/operator/extraEnv/0"),
        ({"tolerations": [{"key": "a", "effect": "Sometimes"}]}, "/tolerations/0/effect"),
        ({"affinity": {"nodeAfinity": {}}}, "/affinity"),
        ({"image": {"digest": "latest"}}, "/image/digest"),
    ],
)
def test_values_schema_rejects(values: dict[str, Any], where: str) -> None:
    with pytest.raises(helm_python.HelmValuesError) as info:
        helmchart.render(values)
    assert where in str(info.value)


def _schema_nodes(node: Any, path: str = "$") -> list[tuple[str, dict[str, Any]]]:
    if not isinstance(node, dict):
        return []
    out = [(path, node)]
    for key, child in node.get("properties", {}).items():
        out += _schema_nodes(child, f"{path}.{key}")
    for key in ("items", "additionalProperties"):
        out += _schema_nodes(node.get(key), f"{path}.{key}")
    for i, option in enumerate(node.get("oneOf", [])):
        out += _schema_nodes(option, f"{path}.oneOf[{i}]")
    return out


def test_schema_closes_every_object() -> None:
    """additionalProperties: false wherever properties are listed; free-form maps are typed."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    for path, node in _schema_nodes(schema):
        if node.get("type") != "object":
            continue
        if "properties" in node:
            assert node.get("additionalProperties") is False, path
        else:
            assert isinstance(node.get("additionalProperties"), dict), path


def _leaf_paths(values: Any, prefix: str = "") -> list[str]:
    if isinstance(values, dict) and values:
        return [p for k, v in values.items() for p in _leaf_paths(v, f"{prefix}.{k}")]
    return [prefix.lstrip(".")]


def _documented_paths(text: str) -> set[str]:
    """Dotted paths of keys with a `# --` comment block directly above them."""
    documented: set[str] = set()
    stack: list[tuple[int, str]] = []
    previous = ""
    for line in text.splitlines():
        match = re.match(r"^( *)([A-Za-z][\w.-]*):", line)
        if match:
            indent, key = len(match.group(1)), match.group(2)
            stack = [(i, k) for i, k in stack if i < indent] + [(indent, key)]
            if previous.lstrip().startswith("#"):
                documented.add(".".join(k for _, k in stack))
        if line.strip():
            previous = line
    return documented


def test_values_are_documented_value_by_value() -> None:
    text = (CHART / "values.yaml").read_text()
    documented = _documented_paths(text)
    for leaf in _leaf_paths(yaml.safe_load(text)):
        parts = leaf.split(".")
        ancestors = {".".join(parts[: i + 1]) for i in range(len(parts))}
        assert ancestors & documented, f"values.yaml: {leaf} has no comment"


def test_chart_crd_is_the_generated_crd() -> None:
    """charts/.../crds/ must be a byte-identical copy of crds/ (the models' output)."""
    source = ROOT / "crds" / "ffmpegpools.ffpool.dev.yaml"
    copy = CHART / "crds" / "ffmpegpools.ffpool.dev.yaml"
    assert source.is_file(), "crds/ffmpegpools.ffpool.dev.yaml is missing"
    assert copy.read_bytes() == source.read_bytes(), "chart CRD is stale: run `make crd`"
    [crd] = helmchart.crd_documents()
    assert crd["metadata"]["name"] == "ffmpegpools.ffpool.dev"


def test_crds_are_not_templates() -> None:
    """CRDs in templates/ would be deleted on uninstall, taking every pool with them."""
    for default_obj in manifests():
        assert default_obj["kind"] != "CustomResourceDefinition"


def test_notes_tell_the_next_commands() -> None:
    notes = helmchart.notes()
    assert f"rollout status deployment/{FULLNAME}" in notes
    assert "kubectl get ffp -w" in notes
    assert "kubectl apply --server-side -f" in notes
    for path in re.findall(r"examples/[\w.-]+", notes):
        assert (ROOT / path).is_file(), f"NOTES.txt names a missing file: {path}"
    assert "Operator metrics" not in notes
    metrics_notes = helmchart.notes(helmchart.VARIANTS["metrics"])
    assert f"{FULLNAME}-metrics.{helmchart.NAMESPACE}.svc:9090/metrics" in metrics_notes


def test_readme_covers_crd_upgrade_and_every_top_level_value() -> None:
    readme = (CHART / "README.md").read_text()
    assert "kubectl apply --server-side -f" in readme
    for key in yaml.safe_load((CHART / "values.yaml").read_text()):
        assert f"`{key}" in readme, f"chart README does not document {key}"


def test_chart_files_are_what_helm_packages() -> None:
    names = {Path(f["name"]).name for f in helmchart.chart().files}
    assert "README.md" in names
