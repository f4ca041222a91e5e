"""kind end-to-end fixtures: a throwaway kind cluster, both images built and loaded into it, the
chart installed with the `helm` binary, the dev RabbitMQ and a pool from the examples.

These need a container engine. Where docker, kind, kubectl or helm is missing, or the Docker
daemon does not answer, every e2e test SKIPS with the reason — also under CI=true: the project's
CI machines cannot run containers at all (docs/kubernetes.md), so this suite runs on developer
machines with `make e2e`.

Environment knobs: FFPOOL_E2E_CLUSTER=name reuses an existing kind cluster (not deleted after);
FFPOOL_E2E_KEEP=1 keeps the cluster the suite created.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.pool import tokens_secret_manifest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
TOOLS = ("docker", "kind", "kubectl", "helm")
SERVICE_IMAGE = "ffpool:e2e"
OPERATOR_IMAGE = "ffpool-operator:e2e"
POOL = "media"
NAMESPACE = "default"  # the example Secret's URLs name it
OPERATOR_NAMESPACE = "ffpool-system"


def missing_prerequisite() -> str | None:
    """Why this machine cannot run the kind suite, or None when it can."""
    for tool in TOOLS:
        if shutil.which(tool) is None:
            return f"e2e needs `{tool}` on PATH (not found)"
    try:
        info = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "e2e needs a Docker daemon: `docker info` did not answer within 20 s"
    if info.returncode != 0:
        first = (info.stderr.strip().splitlines() or ["no output"])[0]
        return f"e2e needs a Docker daemon: `docker info` failed: {first}"
    return None


@pytest.fixture(scope="session")
def prerequisites() -> None:
    # Deliberately not tests/conftest.require(): no CI machine of this project has a container
    # engine, so failing there would only ever be noise. Skips everywhere it cannot run.
    reason = missing_prerequisite()
    if reason:
        pytest.skip(reason)


@dataclass
class Cluster:
    name: str
    kubeconfig: Path

    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def run(self, *argv: str, timeout: float = 120, stdin: str | None = None) -> str:
        """Run a command against this cluster; raise with its stderr on failure."""
        proc = subprocess.run(
            list(argv),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env(),
            cwd=ROOT,
            check=False,
        )
        if proc.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} → {proc.returncode}\n{proc.stderr[-2000:]}")
        return proc.stdout

    def kubectl(self, *args: str, timeout: float = 120, stdin: str | None = None) -> str:
        return self.run("kubectl", *args, timeout=timeout, stdin=stdin)

    def jsonpath(self, resource: str, path: str, namespace: str = NAMESPACE) -> str:
        return self.kubectl("-n", namespace, "get", resource, "-o", f"jsonpath={path}").strip()


@pytest.fixture(scope="session")
def cluster(prerequisites: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    kubeconfig = tmp_path_factory.mktemp("kind") / "kubeconfig"
    reuse = os.environ.get("FFPOOL_E2E_CLUSTER")
    name = reuse or f"ffpool-e2e-{uuid.uuid4().hex[:6]}"
    c = Cluster(name, kubeconfig)
    if reuse:
        c.run("kind", "export", "kubeconfig", "--name", name, "--kubeconfig", str(kubeconfig))
    else:
        c.run(
            "kind",
            "create",
            "cluster",
            "--name",
            name,
            "--kubeconfig",
            str(kubeconfig),
            "--wait",
            "180s",
            timeout=400,
        )
    try:
        yield c
    finally:
        if not reuse and os.environ.get("FFPOOL_E2E_KEEP") != "1":
            c.run("kind", "delete", "cluster", "--name", name, timeout=180)


@pytest.fixture(scope="session")
def images(cluster: Cluster) -> None:
    """Build both images from this checkout and load them into the kind node."""
    for tag, dockerfile in (
        (SERVICE_IMAGE, "service/Dockerfile"),
        (OPERATOR_IMAGE, "operator/Dockerfile"),
    ):
        cluster.run(
            "docker",
            "build",
            "-f",
            dockerfile,
            "-t",
            tag,
            "--build-arg",
            "VERSION=e2e",
            ".",
            timeout=1500,
        )
        cluster.run("kind", "load", "docker-image", tag, "--name", cluster.name, timeout=600)


@pytest.fixture(scope="session")
def operator(cluster: Cluster, images: None) -> None:
    cluster.run(
        "helm",
        "upgrade",
        "--install",
        "ffpool-operator",
        "charts/ffpool-operator",
        "--namespace",
        OPERATOR_NAMESPACE,
        "--create-namespace",
        "--set",
        "image.repository=ffpool-operator",
        "--set",
        "image.tag=e2e",
        "--set",
        "image.pullPolicy=Never",
        "--set",
        "operator.logLevel=DEBUG",
        "--wait",
        "--timeout",
        "5m",
        timeout=360,
    )
    assert cluster.kubectl("get", "crd", "ffmpegpools.ffpool.dev", "-o", "name").strip()


@pytest.fixture(scope="session")
def broker(cluster: Cluster) -> None:
    for name in ("rabbitmq-secret.yaml", "rabbitmq.yaml"):
        cluster.kubectl("-n", NAMESPACE, "apply", "-f", str(EXAMPLES / name))
    cluster.kubectl(
        "-n", NAMESPACE, "rollout", "status", "deployment/rabbitmq", "--timeout=300s", timeout=320
    )


def e2e_pool_manifests() -> str:
    """examples/ffmpegpool.yaml sized for one kind node, with the e2e image and short windows."""
    docs = [d for d in yaml.safe_load_all((EXAMPLES / "ffmpegpool.yaml").read_text()) if d]
    out = []
    for doc in map(copy.deepcopy, docs):
        if doc["kind"] == "FFmpegPool":
            spec: dict[str, Any] = doc["spec"]
            spec.update(image=SERVICE_IMAGE, imagePullPolicy="Never")
            spec["servers"].update(replicas=1, resources={})
            small = {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "1Gi"}}
            spec["workers"]["resources"] = small
            spec["autoscaling"].update(maxReplicas=3, scaleDownStabilizationSeconds=15)
        out.append(doc)
    return yaml.safe_dump_all(out)


@pytest.fixture(scope="session")
def token(cluster: Cluster) -> str:
    """The example pool's tokens Secret (`auth.tokensSecret`), made as docs/kubernetes.md says;
    the token its clients send."""
    token, secret = tokens_secret_manifest(NAMESPACE, "e2e")
    cluster.kubectl("-n", NAMESPACE, "apply", "-f", "-", stdin=json.dumps(secret))
    return token


@pytest.fixture(scope="module")
def pool(cluster: Cluster, operator: None, broker: None, token: str) -> Iterator[str]:
    cluster.kubectl("-n", NAMESPACE, "apply", "-f", "-", stdin=e2e_pool_manifests())
    wait_for(
        lambda: cluster.jsonpath(f"deployment/{POOL}-server", "{.status.readyReplicas}") == "1",
        300,
        "the pool's server to be ready",
    )
    yield POOL
    cluster.kubectl(
        "-n",
        NAMESPACE,
        "delete",
        "ffmpegpool",
        POOL,
        "--ignore-not-found",
        "--wait=true",
        "--timeout=120s",
        timeout=150,
    )


def wait_for(check: Callable[[], bool], timeout: float, what: str, every: float = 2.0) -> None:
    """Poll `check` until true; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except AssertionError as exc:  # a kubectl call that failed this round
            last = exc
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last error: {last}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def port_forward(cluster: Cluster) -> Iterator[Callable[..., dict[int, int]]]:
    """port_forward("service/media", 80, 8081) → {80: local, 8081: local}, torn down after."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(target: str, *ports: int, namespace: str = NAMESPACE) -> dict[int, int]:
        mapping = {port: free_port() for port in ports}
        argv = [
            "kubectl",
            "-n",
            namespace,
            "port-forward",
            "--address",
            "127.0.0.1",
            target,
            *(f"{local}:{remote}" for remote, local in mapping.items()),
        ]
        procs.append(
            subprocess.Popen(
                argv, env=cluster.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        )

        def listening() -> bool:
            for local in mapping.values():
                with socket.socket() as s:
                    s.settimeout(1)
                    if s.connect_ex(("127.0.0.1", local)) != 0:
                        return False
            return True

        wait_for(listening, 30, f"port-forward to {target}", every=0.3)
        return mapping

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)
