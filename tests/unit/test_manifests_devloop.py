"""The development loop and the kind suite, checked without a cluster: the Tiltfile evaluated
with recording stand-ins for Tilt's built-ins, the e2e pool manifests, the e2e skip logic, and
the Kubernetes guide."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from ffpool_operator.spec.pool import PoolSpec
from tests import helmchart
from tests.e2e import conftest as e2e
from tests.helmchart import ROOT, manifests

CHART_CRDS, CHART_REST = object(), object()  # what filter_yaml splits the rendered chart into
TILT_BUILTINS = (
    "docker_build",
    "sync",
    "run",
    "fall_back_on",
    "helm",
    "k8s_yaml",
    "k8s_kind",
    "k8s_resource",
    "local_resource",
    "link",
    "local",
)


@dataclass
class Call:
    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


def evaluate_tiltfile() -> list[Call]:
    """Run the Tiltfile (Starlark is Python-compatible here) against recorders."""
    calls: list[Call] = []

    def recorder(name: str, result: Any = None) -> Any:
        def record(*args: Any, **kwargs: Any) -> Any:
            calls.append(Call(name, args, kwargs))
            return result if result is not None else calls[-1]

        return record

    builtins = {name: recorder(name) for name in TILT_BUILTINS}
    builtins["filter_yaml"] = recorder("filter_yaml", (CHART_CRDS, CHART_REST))
    exec(compile((ROOT / "Tiltfile").read_text(), "Tiltfile", "exec"), builtins)
    return calls


def _by_name(calls: list[Call], name: str) -> list[Call]:
    return [c for c in calls if c.name == name]


def _example_pool() -> dict[str, Any]:
    docs = yaml.safe_load_all((ROOT / "examples" / "ffmpegpool.yaml").read_text())
    return next(d for d in docs if d and d["kind"] == "FFmpegPool")


def test_tiltfile_builds_both_images_with_live_update() -> None:
    calls = evaluate_tiltfile()
    builds = {c.args[0]: c.kwargs for c in _by_name(calls, "docker_build")}
    service_ref = _example_pool()["spec"]["image"].rsplit(":", 1)[0]
    operator_ref = helmchart.chart().values["image"]["repository"]
    assert set(builds) == {service_ref, operator_ref}
    assert builds[service_ref]["dockerfile"] == "service/Dockerfile"
    assert builds[operator_ref]["dockerfile"] == "operator/Dockerfile"
    for kwargs in builds.values():
        assert (ROOT / kwargs["dockerfile"]).is_file()
        dev_src = kwargs["build_args"]["DEV_PYTHONPATH"]
        assert dev_src.startswith("/tmp/"), "must be on the pods' writable /tmp emptyDir"
        syncs = [s for s in kwargs["live_update"] if s.name == "sync"]
        assert syncs
        assert all((ROOT / s.args[0]).is_dir() for s in syncs)
        assert all(s.args[1].startswith(dev_src + "/") for s in syncs)
        [restart] = [s.args[0] for s in kwargs["live_update"] if s.name == "run"]
        version = re.search(r"python:(3\.\d+)-slim", (ROOT / kwargs["dockerfile"]).read_text())
        assert version, "the final stage's Python"
        assert f"/opt/venv/lib/python{version.group(1)}/site-packages/" in restart
        assert "kill 1" in restart
    synced = {s.args[0] for s in builds[operator_ref]["live_update"] if s.name == "sync"}
    assert synced == {"service/ffpool", "operator/ffpool_operator"}
    for path in ("service/Dockerfile", "operator/Dockerfile"):
        assert "ARG DEV_PYTHONPATH=\n" in (ROOT / path).read_text()


def test_tiltfile_installs_the_chart_and_applies_the_examples() -> None:
    calls = evaluate_tiltfile()
    [chart] = _by_name(calls, "helm")
    assert chart.args[0] == "charts/ffpool-operator"
    applied = [a for c in _by_name(calls, "k8s_yaml") for a in c.args]
    files = {f for a in applied for f in (a if isinstance(a, list) else [a]) if isinstance(f, str)}
    assert {
        "examples/rabbitmq.yaml",
        "examples/rabbitmq-secret.yaml",
        "examples/ffmpegpool.yaml",
    } <= files
    assert all((ROOT / f).is_file() for f in files)
    assert CHART_REST in applied, "the rendered chart (minus CRDs) must be applied"
    assert "charts/ffpool-operator/crds/ffmpegpools.ffpool.dev.yaml" in files
    [split] = _by_name(calls, "filter_yaml")
    assert split.args[0] is chart
    assert split.kwargs["kind"] == "CustomResourceDefinition"
    [kind] = _by_name(calls, "k8s_kind")
    assert kind.args == ("FFmpegPool",)
    assert kind.kwargs["image_json_path"] == "{.spec.image}"


def test_tiltfile_forwards_ws_health_and_management_ports() -> None:
    calls = evaluate_tiltfile()
    forwards = [
        p for c in _by_name(calls, "k8s_resource") for p in c.kwargs.get("port_forwards", [])
    ]
    serve = " ".join(c.kwargs.get("serve_cmd", "") for c in _by_name(calls, "local_resource"))
    assert "15672:15672" in forwards
    assert "8080:80" in serve
    assert "8081:8081" in serve


def test_tiltfile_resource_objects_exist() -> None:
    """Tilt refuses to start when a k8s_resource names an object nothing creates."""
    calls = evaluate_tiltfile()
    [chart] = _by_name(calls, "helm")
    release = chart.kwargs["name"]
    assert release == helmchart.RELEASE  # so rendered names match
    known = {f"{o['metadata']['name']}:{o['kind'].lower()}" for o in manifests()}
    known |= {f"{o['metadata']['name']}:{o['kind'].lower()}" for o in helmchart.crd_documents()}
    for name in ("rabbitmq.yaml", "rabbitmq-secret.yaml", "ffmpegpool.yaml"):
        docs = yaml.safe_load_all((ROOT / "examples" / name).read_text())
        known |= {f"{d['metadata']['name']}:{d['kind'].lower()}" for d in docs if d}
    for call in _by_name(calls, "local"):  # Secrets made with `kubectl create secret generic`
        made = re.search(r"create secret generic (\S+)", call.args[0])
        known |= {f"{made.group(1)}:secret"} if made else set()
    for call in _by_name(calls, "k8s_resource"):
        for obj in call.kwargs.get("objects", []):
            assert obj in known, obj


def test_e2e_pool_is_a_valid_pool_for_one_node() -> None:
    docs = [d for d in yaml.safe_load_all(e2e.e2e_pool_manifests()) if d]
    [pool] = [d for d in docs if d["kind"] == "FFmpegPool"]
    spec = PoolSpec.model_validate(pool["spec"])
    assert spec.image == e2e.SERVICE_IMAGE
    assert spec.image_pull_policy.value == "Never"
    assert spec.autoscaling.min_replicas == 0 < spec.autoscaling.max_replicas
    assert pool["metadata"]["name"] == e2e.POOL
    assert {d["kind"] for d in docs} == {"FFmpegPool", "PersistentVolumeClaim"}


def test_e2e_skips_without_a_tool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda tool: None if tool == "kind" else "/bin/x")
    assert e2e.missing_prerequisite() == "e2e needs `kind` on PATH (not found)"


def test_e2e_skips_without_a_docker_daemon(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda tool: f"/usr/bin/{tool}")

    def no_daemon(argv: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(argv, 1, "", "Cannot connect to the Docker daemon\n")

    monkeypatch.setattr(subprocess, "run", no_daemon)
    assert e2e.missing_prerequisite() == (
        "e2e needs a Docker daemon: `docker info` failed: Cannot connect to the Docker daemon"
    )


def test_e2e_runs_when_everything_is_there(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda tool: f"/usr/bin/{tool}")
    ok = subprocess.CompletedProcess(["docker"], 0, "27.0.0\n", "")
    monkeypatch.setattr(subprocess, "run", lambda argv, **_: ok)
    assert e2e.missing_prerequisite() is None


def test_kubernetes_guide_covers_the_user_journey() -> None:
    guide = (ROOT / "docs" / "kubernetes.md").read_text()
    for needle in (
        "helm install",
        "kubectl apply -f examples/ffmpegpool.yaml",
        "Ingress",
        "wss://",
        "kubectl get ffp -w",
        "kubectl get events",
        "helm upgrade",
        "helm uninstall",
        "consumer_timeout",
        "ReadWriteMany",
        "amqps://",
        "Sizing",
        "make e2e",
        "tilt up",
    ):
        assert needle in guide, needle
