"""The test node is a real node: the real kubelet runs the project's image with containerd and
runc under the restricted Pod Security level, with the pod network, probes, env sources and
the termination sequence a cluster has (docs/cluster.md, "The node").

The pods run `localhost/ffpool:dev` with a small Python program instead of ffpool (the image's
Python is all it needs) that reports what it sees to an HTTP listener of the test on the node's
gateway address: the pod's uid, seccomp mode, env, root filesystem, the API server through the
`kubernetes` Service, and the signals it gets.
"""

from __future__ import annotations

import http.server
import ipaddress
import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster import network, teardown
from tests.cluster.containerd import NAMESPACE
from tests.cluster.controlplane import ControlPlane
from tests.cluster.images import pause_image
from tests.cluster.node import Node
from tests.cluster.pool import get, restricted_namespace
from tests.polling import poll_until

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]

NS = "node-test"
IMAGE = "localhost/ffpool:dev"
VERSIONS = Path(__file__).resolve().parents[2] / "cluster" / "versions.env"

# The pod's program: report facts, serve the readiness probe, report SIGTERM (and exit on it
# unless IGNORE_SIGTERM=1, so that only SIGKILL ends it).
APP = """
import http.server, json, os, signal, socket, ssl, urllib.request
def report(kind, **data):
    body = json.dumps({"pod": os.environ["POD_NAME"], "kind": kind, **data}).encode()
    urllib.request.urlopen(urllib.request.Request(os.environ["REPORT_URL"], body), timeout=5)
def on_term(signum, frame):
    report("SIGTERM")
    if os.environ.get("IGNORE_SIGTERM") != "1":
        os._exit(0)
signal.signal(signal.SIGTERM, on_term)
names = ("GREETING", "PASSWORD", "BULK")
facts = {"uid": os.getuid(), "env": {name: os.environ.get(name) for name in names}}
facts["seccomp"] = [l.split()[1] for l in open("/proc/self/status") if l.startswith("Seccomp:")][0]
try:
    open("/written", "w")
except OSError as exc:
    facts["rootfs"] = exc.strerror
sa = "/var/run/secrets/kubernetes.io/serviceaccount/"
host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"]
request = urllib.request.Request(f"https://{host}:{port}/version",
                                 headers={"Authorization": "Bearer " + open(sa + "token").read()})
context = ssl.create_default_context(cafile=sa + "ca.crt")
facts["api"] = json.load(urllib.request.urlopen(request, context=context, timeout=5))["gitVersion"]
try:
    socket.create_connection(("203.0.113.1", 80), timeout=3)
    facts["outside"] = "connected"
except OSError as exc:
    facts["outside"] = exc.strerror
report("started", **facts)
class Ready(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"ready")
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", 8080), Ready).serve_forever()
"""

RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}
RESTRICTED_POD = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "runAsGroup": 10001,
    "seccompProfile": {"type": "RuntimeDefault"},
}


class Reports:
    """An HTTP listener on the node's gateway address collecting the pods' JSON reports."""

    def __init__(self, host: str) -> None:
        self.items: list[dict[str, Any]] = []
        reports = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                reports.items.append({"at": time.monotonic(), **json.loads(body)})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, pod: str, kind: str, timeout: float = 60) -> dict[str, Any]:
        def found() -> list[dict[str, Any]]:
            return [r for r in self.items if r["pod"] == pod and r["kind"] == kind]

        return poll_until(found, timeout=timeout, what=f"{kind} report from pod {pod}")[0]


@pytest.fixture(scope="module")
def reports(node: Node) -> Iterator[Reports]:
    listener = Reports(node.gateway)
    try:
        yield listener
    finally:
        listener.server.shutdown()
        listener.server.server_close()


@pytest.fixture(scope="module")
def namespace(control_plane: ControlPlane, node: Node) -> Iterator[str]:
    restricted_namespace(control_plane, NS)
    literals = ["--from-literal=greeting=hello", "--from-literal=BULK=from-envFrom"]
    control_plane.kubectl("create", "configmap", "settings", "-n", NS, *literals)
    secret = ["generic", "credentials", "--from-literal=password=s3cret"]
    control_plane.kubectl("create", "secret", *secret, "-n", NS)
    try:
        yield NS
    finally:
        control_plane.kubectl("delete", "namespace", NS, "--wait=false", check=False)


def key_of(name: str, key: str) -> dict[str, str]:
    return {"name": name, "key": key}


def app_pod(
    name: str, report_url: str, *, grace: int = 30, ignore_sigterm: bool = False
) -> dict[str, Any]:
    env = [
        {"name": "REPORT_URL", "value": report_url},
        {"name": "IGNORE_SIGTERM", "value": "1" if ignore_sigterm else "0"},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "GREETING", "valueFrom": {"configMapKeyRef": key_of("settings", "greeting")}},
        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": key_of("credentials", "password")}},
    ]
    container = {
        "name": "app",
        "image": IMAGE,
        "imagePullPolicy": "Never",
        "command": ["python", "-c", APP],
        "env": env,
        "envFrom": [{"configMapRef": {"name": "settings"}}],
        "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1},
        "securityContext": RESTRICTED_CONTAINER,
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "terminationGracePeriodSeconds": grace,
            "securityContext": RESTRICTED_POD,
            "containers": [container],
        },
    }


def apply(plane: ControlPlane, *objects: dict[str, Any]) -> None:
    plane.kubectl(
        "apply",
        "-f",
        "-",
        input_text=json.dumps({"kind": "List", "items": objects, "apiVersion": "v1"}),
    )


def wait_ready(plane: ControlPlane, name: str, timeout: float = 60) -> dict[str, Any]:
    """The pod, once its Ready condition is True."""

    def ready() -> dict[str, Any]:
        pod = get(plane, "pod", name, namespace=NS)
        conditions = pod.get("status", {}).get("conditions") or []
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
        return pod if ready else {}

    return poll_until(ready, timeout=timeout, what=f"pod {name} Ready")


def test_the_node_is_ready_with_the_real_kubelet_and_containerd(
    control_plane: ControlPlane, node: Node
) -> None:
    obj = get(control_plane, "node", node.name, namespace="")
    info = obj["status"]["nodeInfo"]
    version = next(line for line in VERSIONS.read_text().splitlines() if line.startswith("KUB"))
    assert info["kubeletVersion"] == version.split("=", 1)[1]
    assert info["containerRuntimeVersion"].startswith("containerd://")
    assert {"type": "InternalIP", "address": node.gateway} in obj["status"]["addresses"]
    names = {name for image in obj["status"]["images"] for name in image.get("names", [])}
    assert IMAGE in names


def test_a_restricted_pod_runs_with_its_env_its_probe_and_the_pod_network(
    control_plane: ControlPlane, node: Node, namespace: str, reports: Reports
) -> None:
    apply(control_plane, app_pod("facts", reports.url))
    facts = reports.wait("facts", "started")
    assert facts["uid"] == 10001
    assert facts["seccomp"] == "2"  # RuntimeDefault: a seccomp filter is in force
    assert facts["rootfs"] == "Read-only file system"
    assert facts["env"] == {"GREETING": "hello", "PASSWORD": "s3cret", "BULK": "from-envFrom"}
    # In-cluster API access as client libraries do it: the Service's env, the mounted token
    # and CA, TLS verified against the ClusterIP the API server's certificate names.
    assert facts["api"] == node_version(control_plane, node)
    assert facts["outside"] == "Network is unreachable"  # no route off the machine
    pod = wait_ready(control_plane, "facts")
    pod_ip = pod["status"]["podIP"]
    assert ipaddress.ip_address(pod_ip) in ipaddress.ip_network(network.POD_SUBNET)
    with urllib.request.urlopen(f"http://{pod_ip}:8080/", timeout=5) as answer:  # the host → pod
        assert answer.read() == b"ready"
    # The API server → the kubelet's own server (client certificate, webhook authorization).
    said = control_plane.kubectl("exec", "facts", "-n", NS, "--", "python", "-c", "print(6 * 7)")
    assert said.strip() == "42"


def node_version(plane: ControlPlane, node: Node) -> str:
    return str(get(plane, "node", node.name, namespace="")["status"]["nodeInfo"]["kubeletVersion"])


def test_deletion_sends_sigterm_and_sigkill_after_the_grace_period(
    control_plane: ControlPlane, node: Node, namespace: str, reports: Reports
) -> None:
    polite = app_pod("polite", reports.url, grace=30)
    stubborn = app_pod("stubborn", reports.url, grace=3, ignore_sigterm=True)
    apply(control_plane, polite, stubborn)
    for name in ("polite", "stubborn"):
        wait_ready(control_plane, name)
    began = time.monotonic()
    control_plane.kubectl("delete", "pod", "polite", "stubborn", "-n", NS, "--wait=false")
    gone: dict[str, float] = {}

    def both_gone() -> bool:
        for name in ("polite", "stubborn"):
            if name not in gone and not get(control_plane, "pod", name, namespace=NS):
                gone[name] = time.monotonic() - began
        return len(gone) == 2

    poll_until(both_gone, timeout=60, what="both pods deleted")
    for name in ("polite", "stubborn"):
        assert reports.wait(name, "SIGTERM", timeout=5)["at"] - began < 3
    assert gone["polite"] < 3 + 10  # exited on SIGTERM, long before its 30 s grace period
    assert 3 <= gone["stubborn"] < 3 + 10  # ignored SIGTERM: killed once its 3 s were up


def test_a_crashed_node_leaves_nothing_after_cleanup_and_restarts(
    control_plane: ControlPlane, node: Node, namespace: str
) -> None:
    """The kubelet and containerd die (SIGKILL): the shims and containers live on. The cleanup
    `Node.start` runs after a crashed run finds and removes all of it, and the node, booted
    again in the same work dir, runs the pod again (the session's node is Ready afterwards)."""
    _, pause = pause_image()
    sleeper = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "sleeper", "namespace": NS},
        "spec": {
            "securityContext": RESTRICTED_POD,
            "containers": [
                {
                    "name": "pause",
                    "image": pause,
                    "imagePullPolicy": "Never",
                    "securityContext": RESTRICTED_CONTAINER,
                }
            ],
        },
    }
    apply(control_plane, sleeper)
    wait_ready(control_plane, "sleeper")
    runc_root = node.workdir / "containerd" / "runc" / NAMESPACE
    ids = teardown.container_ids(node.workdir)
    pids = [
        json.loads((runc_root / cid / "state.json").read_text())["init_process_pid"]
        for cid in ids
        if (runc_root / cid / "state.json").exists()
    ]
    assert pids

    node.kill()
    assert all(alive(pid) for pid in pids), "containers outlive containerd and the kubelet"
    assert teardown.leftovers(node.workdir, ids), "a crash leaves shims, mounts, the bridge"
    teardown.clean(node.workdir)
    assert teardown.leftovers(node.workdir, ids) == []
    assert not any(alive(pid) for pid in pids)

    node.restart()
    wait_ready(control_plane, "sleeper")  # the kubelet started it anew
    control_plane.kubectl("delete", "pod", "sleeper", "-n", NS, "--wait=false")


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"  # a zombie is dead, just not yet reaped
