"""The real cluster behind `python -m bench.autoscale --cluster` (docs/access.md): the test
suite's control plane and node (tests/cluster/) with the project's service image, a broker user
the pods can reach (guest works from loopback only), and a namespace enforcing the restricted
Pod Security level, with the CRD, the pool's Secret and its media claim. Per run, a pool whose
worker pods are real containers that the real ReplicaSet controller creates and deletes; the
operator runs in-process against the real API server as the cluster admin (or, for the KEDA
runs, only its reconcile functions run), exactly as on KMock (bench/stage.py).

The media claim is bound to a hostPath volume holding the clips, so one directory is seen twice:
at its host path by the submitter (on the host, publishing as a server would) and at the pool's
mountPath (MEDIA_ROOT) in the pods. A job's PathInput is relative to MEDIA_ROOT, so the same job
resolves to the same file on both sides.

World setup and teardown are synchronous, outside the runs' event loop: a Ctrl-C while the node
starts is then an ordinary KeyboardInterrupt that unwinds what already started."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

from bench.burst import make_media
from bench.kubepods import PodWatcher
from bench.stage import (
    WORKER_DEPLOYMENT,
    Scenario,
    Stage,
    cleanup_broker,
    create_pool,
    make_children,
    pool_manifest,
    start_load,
)
from ffpool import names
from ffpool_operator.kube import access
from ffpool_operator.kube.client import Kube
from ffpool_operator.manifests import objects
from ffpool_operator.spec import crd
from ffpool_operator.spec.pool import PoolRef
from tests.cluster.broker import create_user
from tests.cluster.conftest import SERVICE_IMAGE
from tests.cluster.controlplane import ROOT, ControlPlane
from tests.cluster.images import cache_dir
from tests.cluster.node import Node
from tests.cluster.pool import POOL_NS, SERVICE_UID, media_volume, restricted_namespace
from tests.conftest import broker_reachable
from tests.operator_harness.helpers import Broker

NAMESPACE = POOL_NS  # media_volume() binds its volume to a claim in this namespace
CLAIM = "media"  # the claim and Secret names the test helper's pool body refers to
SECRET = "rmq"
# Not the test session's user: a test session may share the broker, and re-creating its user
# would change that user's password under its pods.
BROKER_USER = "ffpool-autoscale-bench"
# Small requests so that max workers fit the 2-core node; no CPU limit, as on KMock, where
# every worker process could use any core (each FFmpeg runs one thread anyway).
WORKER_RESOURCES = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "1Gi"}}
PODS_GONE_SECONDS = 120.0


def say(text: str) -> None:
    print(f"[cluster] {text}", file=sys.stderr, flush=True)


@dataclass
class World:
    plane: ControlPlane
    media: Path

    @contextlib.asynccontextmanager
    async def stage(self, sc: Scenario, *, operator: bool) -> AsyncIterator[Stage]:
        async with contextlib.AsyncExitStack() as stack:
            broker = Broker(f"ffautoscale{uuid.uuid4().hex[:8]}")
            stack.push_async_callback(cleanup_broker, broker)
            kube = Kube(access.load())
            stack.push_async_callback(kube.close)
            pool, spec = await create_pool(kube, pool_in_cluster(broker, sc))
            await make_children(stack, kube, broker, pool, spec, operator=operator)
            # Runs before the operator stops (the stack unwinds last in, first out): its
            # finalizer must be handled, and the next run starts on an empty node.
            stack.push_async_callback(delete_pool, kube, pool)
            fleet = PodWatcher(kube, pool.namespace, WORKER_DEPLOYMENT)
            submitter = await start_load(stack, kube, pool, fleet, self.media)
            yield Stage(kube, broker, pool, spec, fleet, submitter)


def pool_in_cluster(broker: Broker, sc: Scenario) -> dict[str, Any]:
    """The KMock runs' pool, in this namespace, on the locally built image (never pulled: no
    registry is reachable), with requests that fit the node."""
    body = pool_manifest(broker, sc)
    body["metadata"]["namespace"] = NAMESPACE
    spec = body["spec"]
    spec.update(image=SERVICE_IMAGE, imagePullPolicy="Never")
    # No server pods: the submitter publishes as a server would, as on KMock (where no process
    # runs the server Deployment); they would only take CPU from the workers.
    spec["servers"] = {"replicas": 0}
    spec["workers"]["resources"] = WORKER_RESOURCES
    return body


async def delete_pool(kube: Kube, pool: PoolRef) -> None:
    """Delete the pool and wait until its worker pods are gone (the garbage collector removes
    the Deployment, its ReplicaSet and then the pods)."""
    await kube.delete(names.CRD_KIND, pool.namespace, pool.name)
    selector = objects.selector_text(pool, names.COMPONENT_WORKER)
    deadline = time.monotonic() + PODS_GONE_SECONDS
    while await kube.list("Pod", pool.namespace, selector):
        if time.monotonic() > deadline:
            raise TimeoutError(f"worker pods still there {PODS_GONE_SECONDS:.0f} s after")
        await asyncio.sleep(0.5)


def build_images() -> Path:
    """The service image, (re)built by scripts/images.sh when the tree changed, saved where the
    cluster tests keep it (tests/cluster/conftest.py)."""
    archives = cache_dir() / "images" / "archives"
    script = ROOT / "scripts" / "images.sh"
    subprocess.run(
        ["bash", str(script), "--save", str(archives)],
        stdout=sys.stderr,
        check=True,
        timeout=1800,
    )
    return archives / "ffpool.tar"


@contextlib.contextmanager
def world(sc: Scenario) -> Iterator[World]:
    """Start everything; on exit stop all of it again, in reverse order. After an error the
    work directory stays (the components' logs), and the message says where."""
    if not broker_reachable():
        raise SystemExit("RabbitMQ on 127.0.0.1:5672 is needed (make setup starts it)")
    workdir = Path(tempfile.mkdtemp(prefix="ffpool-autoscale-cluster-"))
    try:
        with contextlib.ExitStack() as stack:
            yield _start(stack, sc, workdir)
    except Exception:
        say(f"logs kept in {workdir}")
        raise
    except BaseException:  # Ctrl-C: nothing to look into
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    shutil.rmtree(workdir, ignore_errors=True)


def _start(stack: contextlib.ExitStack, sc: Scenario, workdir: Path) -> World:
    stack.callback(signal.signal, signal.SIGINT, signal.getsignal(signal.SIGINT))
    archive = build_images()
    say("starting the control plane")
    plane = ControlPlane.start(workdir / "control-plane")
    stack.callback(plane.stop)
    say("starting the node")
    node = Node.start(plane, workdir / "node", [archive])
    stack.callback(node.stop)
    user = create_user(node.gateway, BROKER_USER)
    stack.callback(user.delete)
    say(f"node ready after {node.startup_seconds:.0f} s; preparing namespace {NAMESPACE}")
    # Read by access.load(), for the operator (kopf's login) and the benchmark's client.
    stack.enter_context(mock.patch.dict(os.environ, KUBECONFIG=str(plane.admin_kubeconfig)))
    media = workdir / "media"
    prepare_namespace(plane, sc, media)
    plane.kubectl("apply", "-f", "-", input_text=user.secret_manifest(SECRET, NAMESPACE))
    # A second Ctrl-C must not cut the teardown short: it runs with SIGINT ignored.
    stack.callback(signal.signal, signal.SIGINT, signal.SIG_IGN)
    stack.callback(say, "tearing down")
    return World(plane, media)


def prepare_namespace(plane: ControlPlane, sc: Scenario, media: Path) -> None:
    """The CRD, the restricted namespace, and the media claim bound to `media` holding the
    clips, all owned by the service's user (the pods run as it; hostPath keeps host owners)."""
    plane.kubectl("apply", "--server-side", "-f", str(ROOT / "crds" / f"{crd.CRD_NAME}.yaml"))
    plane.kubectl("wait", "--for=condition=Established", f"crd/{crd.CRD_NAME}", "--timeout=60s")
    restricted_namespace(plane, NAMESPACE)
    media_volume(plane, media, CLAIM)
    make_media(media, sc.clip_seconds, sc.clip_size, sc.long_jobs > 0)
    for path in (media, *media.rglob("*")):
        os.chown(path, SERVICE_UID, SERVICE_UID)
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": CLAIM, "namespace": NAMESPACE},
        # No class: there is no provisioner; a claim without one binds the volume without one.
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "",
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }
    plane.kubectl("apply", "-f", "-", input_text=json.dumps(claim))
