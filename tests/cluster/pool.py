"""What the pool journey tests share: names, `kubectl` reads, the namespaces and volumes a pool
needs on the test cluster, and a recorder of the worker Deployment's replica count."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any, Self

from ffpool import names
from ffpool.auth.tokens import file_line, new_token
from tests.cluster.controlplane import ControlPlane
from tests.polling import poll_until

OPERATOR_NS = "ffpool-system"
RELEASE = "ffpool"
POOL_NS = "media-test"
POOL = "media"
SERVICE_UID = 10001  # service/Dockerfile's USER
TOKENS_SECRET = "ffpool-tokens"  # examples/ffmpegpool.yaml's auth.tokensSecret
TENANT = "cluster-test"
SERVER_PODS = f"{names.LABEL_POOL}={POOL},{names.LABEL_COMPONENT}={names.COMPONENT_SERVER}"
RESTRICTED = {
    f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "audit", "warn")
}


def helm(plane: ControlPlane, *args: str, check: bool = True) -> str:
    done = plane.run("helm", *args)
    if check and done.returncode != 0:
        raise RuntimeError(f"helm {' '.join(args)}: {done.stderr}")
    return done.stdout


def get(plane: ControlPlane, *what: str, namespace: str = POOL_NS) -> dict[str, Any]:
    """One object (or a list) as JSON; `{}` when it does not exist."""
    out = plane.kubectl("get", *what, "-n", namespace, "-o", "json", check=False)
    try:
        result: dict[str, Any] = json.loads(out)
    except json.JSONDecodeError:
        return {}
    return result


def condition(plane: ControlPlane, kind: str) -> str:
    conditions = get(plane, "ffp", POOL).get("status", {}).get("conditions") or []
    return next((c["status"] for c in conditions if c["type"] == kind), "")


def restricted_namespace(plane: ControlPlane, name: str) -> None:
    """A namespace that enforces the `restricted` Pod Security level (admission refuses any pod
    that does not meet it)."""
    manifest = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    manifest["metadata"]["labels"] = RESTRICTED  # type: ignore[index]
    plane.kubectl("apply", "-f", "-", input_text=json.dumps(manifest))


def media_volume(plane: ControlPlane, directory: Path, claim: str) -> None:
    """The example's PersistentVolumeClaim, bound to a hostPath volume on the one node (there is
    no storage provisioner): a volume without a class binds a claim without one."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chown(directory, SERVICE_UID, SERVICE_UID)
    volume = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": f"{POOL_NS}-{claim}"},
        "spec": {
            "capacity": {"storage": "5Gi"},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "hostPath": {"path": str(directory), "type": "Directory"},
            "claimRef": {"namespace": POOL_NS, "name": claim},
        },
    }
    plane.kubectl("apply", "-f", "-", input_text=json.dumps(volume))


def tokens_secret_manifest(namespace: str, tenant: str) -> tuple[str, dict[str, Any]]:
    """A fresh token and the example pool's tokens Secret holding it, made the way
    docs/kubernetes.md says (the token's line under the key `tokens`)."""
    token = new_token()
    return token, {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": TOKENS_SECRET, "namespace": namespace},
        "stringData": {"tokens": file_line(tenant, token) + "\n"},
    }


def tokens_secret(plane: ControlPlane) -> str:
    """The example pool's tokens Secret; returns the token, for the clients."""
    token, manifest = tokens_secret_manifest(POOL_NS, TENANT)
    plane.kubectl("apply", "-f", "-", input_text=json.dumps(manifest))
    return token


def wait_ready(plane: ControlPlane, timeout: float = 240) -> None:
    poll_until(lambda: condition(plane, "Ready") == "True", timeout=timeout, what="pool Ready")


def ready_pods(plane: ControlPlane, component: str) -> list[dict[str, Any]]:
    """The pool's pods of one component when each of them runs and is Ready; [] before."""
    selector = f"{names.LABEL_POOL}={POOL},{names.LABEL_COMPONENT}={component}"
    pods: list[dict[str, Any]] = get(plane, "pods", "-l", selector).get("items") or []
    for pod in pods:
        conditions = pod.get("status", {}).get("conditions") or []
        if not any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
            return []
    return pods


def generation(plane: ControlPlane, deployment: str) -> int:
    return int(get(plane, "deployment", deployment).get("metadata", {}).get("generation") or 0)


def rolled_out(plane: ControlPlane, deployment: str, after: int) -> bool:
    """The Deployment changed since generation `after` and every replica runs the new template."""
    body = get(plane, "deployment", deployment)
    meta, spec, status = body.get("metadata", {}), body.get("spec", {}), body.get("status", {})
    want = spec.get("replicas", 1)
    return bool(
        meta.get("generation", 0) > after
        and status.get("observedGeneration") == meta["generation"]
        and status.get("updatedReplicas") == want
        and status.get("readyReplicas") == want
        and status.get("replicas") == want
    )


def worker_replicas(plane: ControlPlane) -> int:
    return int(get(plane, "deployment", f"{POOL}-worker").get("spec", {}).get("replicas") or 0)


class Sampler:
    """Reads something every half second in a thread while the `with` block runs."""

    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.sample()

    def sample(self) -> None:
        raise NotImplementedError


class ReplicaLog(Sampler):
    """The worker Deployment's `spec.replicas` over time."""

    def __init__(self, plane: ControlPlane) -> None:
        super().__init__(plane)
        self.samples: list[tuple[float, int]] = []

    def sample(self) -> None:
        self.samples.append((time.monotonic(), worker_replicas(self.plane)))

    @property
    def peak(self) -> int:
        return max((n for _, n in self.samples), default=0)

    def first_below_peak_after_peak(self) -> float | None:
        """When the count first fell below its peak after reaching it."""
        reached = False
        for at, count in self.samples:
            reached = reached or count == self.peak
            if reached and count < self.peak:
                return at
        return None
