"""The README's Kubernetes flow on the real cluster, in order: `helm install` the operator,
`kubectl apply -f examples/ffmpegpool.yaml`, jobs through the pool's Ingress while the workers
scale, `kubectl scale`, `kubectl delete ffp`, `helm uninstall`. The tests share one operator and
one pool (module fixtures) and run in file order: each step starts from where the last ended."""

from __future__ import annotations

import asyncio
import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from ffpool import names
from tests.cluster.broker import BrokerUser
from tests.cluster.burst import burst
from tests.cluster.conftest import OPERATOR_IMAGE
from tests.cluster.controlplane import ControlPlane
from tests.cluster.ingress import IngressController
from tests.cluster.pool import (
    OPERATOR_NS,
    POOL,
    POOL_NS,
    RELEASE,
    SERVER_PODS,
    ReplicaLog,
    condition,
    generation,
    get,
    helm,
    ready_pods,
    rolled_out,
    wait_ready,
    worker_replicas,
)
from tests.conftest import make_clip
from tests.polling import poll_until

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]
CRD = "ffmpegpools.ffpool.dev"
MAX_WORKERS = 3
SHORT_JOBS = 9
LONG_JOBS = 2


def test_helm_install_establishes_the_crd_and_runs_the_operator(
    control_plane: ControlPlane, operator: str
) -> None:
    established = control_plane.kubectl(
        "get", "crd", CRD, "-o", 'jsonpath={.status.conditions[?(@.type=="Established")].status}'
    )
    assert established == "True"
    pods = get(
        control_plane, "pods", "-l", f"app.kubernetes.io/instance={RELEASE}", namespace=OPERATOR_NS
    )["items"]
    assert [p["status"]["phase"] for p in pods] == ["Running"]
    [pod] = pods
    assert pod["spec"]["serviceAccountName"] == operator
    assert pod["spec"]["containers"][0]["image"] == OPERATOR_IMAGE


def test_the_operator_is_held_to_the_charts_rbac(
    control_plane: ControlPlane, operator: str
) -> None:
    """The real RBAC authorizer answers for the operator's ServiceAccount from the chart's rules:
    what it needs is allowed, what it does not need is refused."""
    who = f"--as=system:serviceaccount:{OPERATOR_NS}:{operator}"

    def can(*what: str) -> bool:
        answer = control_plane.run("kubectl", "auth", "can-i", *what, who)
        return answer.returncode == 0  # `yes` exits 0, `no` exits 1

    assert can("patch", "deployments.apps", "-n", POOL_NS)
    assert can("patch", f"{CRD}/status", "-n", POOL_NS)
    assert can("create", "events", "-n", POOL_NS)
    assert can("patch", "networkpolicies.networking.k8s.io", "-n", POOL_NS)
    assert can("delete", "poddisruptionbudgets.policy", "-n", POOL_NS)
    assert can("create", "secrets", "-n", POOL_NS)  # the signing key, once
    assert not can("list", "secrets", "-n", POOL_NS)
    assert not can("patch", "secrets", "-n", POOL_NS)
    assert not can("create", "clusterrolebindings")
    assert not can("delete", "nodes")
    assert not can("create", "pods/exec", "-n", POOL_NS)
    assert not can("delete", "namespaces")


def test_example_pool_becomes_ready_under_restricted_pod_security(
    control_plane: ControlPlane, pool: Path
) -> None:
    wait_ready(control_plane)
    assert condition(control_plane, "TopologyReady") == "True"
    uid = get(control_plane, "ffp", POOL)["metadata"]["uid"]
    for child in (
        f"deployment/{POOL}-server",
        f"deployment/{POOL}-worker",
        f"service/{POOL}",
        f"configmap/{POOL}-config",
        f"secret/{POOL}-signing",
        f"networkpolicy/{POOL}-server-netpol",  # the example turns the policies on
        f"networkpolicy/{POOL}-worker-netpol",
        f"poddisruptionbudget/{POOL}-server-pdb",  # on by default, policy/v1
    ):
        owners = get(control_plane, child).get("metadata", {}).get("ownerReferences") or []
        assert [(o["uid"], o.get("controller")) for o in owners] == [(uid, True)], child
    servers = poll_until(
        lambda: ready_pods(control_plane, names.COMPONENT_SERVER),
        timeout=120,
        what="server pods ready",
    )
    assert len(servers) == 2
    for server in servers:
        assert server["status"]["phase"] == "Running"
        assert server["status"]["podIP"].startswith("198.18.0.")
        assert server["spec"]["securityContext"]["runAsNonRoot"] is True
    table = control_plane.kubectl("get", "ffp", "-n", POOL_NS)
    assert POOL in table
    assert "True" in table.splitlines()[1]
    assert table.split()[:9] == [
        "NAME",
        "WORKERS",
        "DESIRED",
        "QUEUE",
        "READY",
        "PAUSED",
        "FALLBACK",
        "AGE",
        POOL,
    ]
    operator_logs = control_plane.kubectl(
        "logs", "-n", OPERATOR_NS, "-l", f"app.kubernetes.io/instance={RELEASE}", "--tail=-1"
    )
    assert "Forbidden" not in operator_logs
    assert " 403" not in operator_logs


def test_pod_security_admission_refuses_a_pod_below_restricted(
    control_plane: ControlPlane, pool: Path
) -> None:
    """A pod that sets no securityContext (root allowed, privilege escalation, no seccomp) is
    refused by admission in the pool's namespace."""
    container = {"name": "c", "image": "localhost/ffpool:dev"}
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "unrestricted", "namespace": POOL_NS},
        "spec": {"containers": [container]},
    }
    answer = control_plane.kubectl("apply", "-f", "-", input_text=json.dumps(pod), check=False)
    assert 'violates PodSecurity "restricted' in answer


async def test_a_burst_through_the_ingress_scales_workers_and_interrupts_none(
    control_plane: ControlPlane,
    pool: Path,
    ingress_controller: IngressController,
    pool_token: str,
    ffmpeg_bin: str,
    ffprobe_bin: str,
    tmp_path: Path,
) -> None:
    """Workers scale up for a burst, drain it, and scale down while two long jobs still run: the
    operator marks the idle workers cheapest to delete and the real ReplicaSet controller removes
    those. With drainSeconds 0 a busy worker that got SIGTERM would hand its job back at once, so
    a wrong victim shows as a job started twice."""
    patch = {
        "spec": {
            "servers": {"ingress": {"enabled": True, "host": "media.ffpool.test"}},
            "workers": {
                "drainSeconds": 0,
                "resources": {
                    "requests": {"cpu": "100m", "memory": "128Mi"},
                    "limits": {"cpu": "1", "memory": "1Gi"},
                },
            },
            "autoscaling": {
                "maxReplicas": MAX_WORKERS,
                "pollingIntervalSeconds": 2,
                "scaleDownStabilizationSeconds": 10,
            },
            "env": {"FFMPEG_THREADS": "1"},
        }
    }
    servers = f"{POOL}-server"
    before = generation(control_plane, servers)
    control_plane.kubectl(
        "patch", "ffp", POOL, "-n", POOL_NS, "--type=merge", "-p", json.dumps(patch)
    )
    ingress = poll_until(
        lambda: get(control_plane, "ingress", POOL), timeout=60, what="the pool's Ingress"
    )
    owner = get(control_plane, "ffp", POOL)["metadata"]["uid"]
    assert [o["uid"] for o in ingress["metadata"]["ownerReferences"]] == [owner]
    # The new env rolls the servers: every client request goes to the new pods.
    poll_until(
        lambda: rolled_out(control_plane, servers, before), timeout=180, what="servers rolled out"
    )
    short_clip = make_clip(ffmpeg_bin, tmp_path / "short.mp4", seconds=4, size="320x240")
    long_clip = make_clip(ffmpeg_bin, tmp_path / "long.mp4", seconds=90, size="640x360")
    with ReplicaLog(control_plane) as replicas:
        result = await burst(
            ingress_controller.url,
            pool_token,
            short_clip,
            long_clip,
            short=SHORT_JOBS,
            long=LONG_JOBS,
            out_dir=tmp_path / "out",
        )
        await asyncio.to_thread(
            poll_until,
            lambda: worker_replicas(control_plane) == 0,
            timeout=120,
            what="workers back to zero",
        )
    assert replicas.peak == MAX_WORKERS
    scaled_down = replicas.first_below_peak_after_peak()
    assert scaled_down is not None
    assert scaled_down < result.long_done_at, "the scale-down came only after the long jobs"
    assert result.completed == dict.fromkeys(result.ledger.expected, 1)
    assert result.ledger.interrupted == []
    assert result.ledger.failed == 0
    for output in result.downloaded:
        probe = [ffprobe_bin, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0"]
        duration = subprocess.run([*probe, str(output)], capture_output=True, text=True, check=True)
        assert float(duration.stdout) > 3


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_the_ingress_routes_no_ops_paths_and_the_ops_port_serves_metrics(
    control_plane: ControlPlane, pool: Path, ingress_controller: IngressController
) -> None:
    """Runs after the burst enabled the Ingress: /metrics and /dead-letters are not routed (the
    controller answers them itself, as any unrouted path: nginx's 403 or 404), a client path
    without a token is refused by the pool, and the Service's `ops` port (its EndpointSlice, as
    a scraper finds it) answers /metrics."""
    base = ingress_controller.url
    unrouted = _status(base + "/not-a-client-path")
    assert unrouted in (403, 404)
    assert _status(base + names.METRICS_PATH) == unrouted
    assert _status(base + names.DEAD_LETTERS_PATH) == unrouted
    assert _status(base + names.JOB_PATH.format(job_id="nope")) == 401
    slices = get(control_plane, "endpointslices", "-l", f"kubernetes.io/service-name={POOL}")[
        "items"
    ]
    ops = [
        f"http://{address}:{port['port']}{names.METRICS_PATH}"
        for piece in slices
        for port in piece.get("ports") or []
        if port.get("name") == "ops"
        for endpoint in piece.get("endpoints") or []
        for address in endpoint["addresses"]
    ]
    assert ops, slices
    assert all(_status(url) == 200 for url in ops)


def test_kubectl_scale_sets_workers_when_autoscaling_is_off(
    control_plane: ControlPlane, pool: Path
) -> None:
    patch = {"spec": {"autoscaling": {"enabled": False}}}
    control_plane.kubectl(
        "patch", "ffp", POOL, "-n", POOL_NS, "--type=merge", "-p", json.dumps(patch)
    )
    control_plane.kubectl("scale", "ffp", POOL, "-n", POOL_NS, "--replicas=2")
    poll_until(lambda: worker_replicas(control_plane) == 2, timeout=60, what="2 workers")
    ready = poll_until(
        lambda: (
            get(control_plane, "deployment", f"{POOL}-worker")
            .get("status", {})
            .get("readyReplicas")
            == 2
        ),
        timeout=120,
        what="2 ready worker pods",
    )
    assert ready
    poll_until(
        lambda: get(control_plane, "ffp", POOL)["status"]["workers"]["ready"] == 2,
        timeout=30,
        what="status.workers.ready = 2",
    )
    control_plane.kubectl("scale", "ffp", POOL, "-n", POOL_NS, "--replicas=0")
    poll_until(lambda: worker_replicas(control_plane) == 0, timeout=60, what="no workers")


def test_deleting_the_pool_collects_its_children_and_keeps_its_queues(
    control_plane: ControlPlane, pool: Path, broker_user: BrokerUser
) -> None:
    control_plane.kubectl("delete", "ffp", POOL, "-n", POOL_NS, "--timeout=120s")
    for child in (
        f"deployment/{POOL}-server",
        f"deployment/{POOL}-worker",
        f"service/{POOL}",
        f"configmap/{POOL}-config",
    ):
        poll_until(lambda c=child: not get(control_plane, c), timeout=60, what=f"{child} collected")
    poll_until(
        lambda: not get(control_plane, "pods", "-l", SERVER_PODS)["items"],
        timeout=90,
        what="server pods gone",
    )
    # deletionPolicy Retain (the example's): the job queue and the dead-letter queue stay.
    assert broker_user.queue_exists("ffmpeg_job_queue")
    assert broker_user.queue_exists("ffmpeg_job_dlq")


def test_helm_uninstall_keeps_the_crd(control_plane: ControlPlane, operator: str) -> None:
    helm(control_plane, "uninstall", RELEASE, "--namespace", OPERATOR_NS, "--wait")
    assert not get(
        control_plane,
        "deployment",
        "-l",
        f"app.kubernetes.io/instance={RELEASE}",
        namespace=OPERATOR_NS,
    )["items"]
    kept = control_plane.kubectl("get", "crd", CRD, "-o", "name").strip()
    assert kept == f"customresourcedefinition.apiextensions.k8s.io/{CRD}"
