"""The four lines users run, on a real (kind) cluster: `helm install` the operator, apply a
RabbitMQ and a pool, reach the pool through its Service with the WebSocket client, and watch the
workers follow the queue. Run with `make e2e`; skips without docker/kind/kubectl/helm (conftest).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from ffpool import names
from ffpool.client.session import Client
from ffpool.domain.events import CompletedEvent
from ffpool.domain.jobs import JobSpec, Preset, ThumbnailOp, TranscodeOp, UploadInput
from tests.conftest import make_clip
from tests.e2e.conftest import NAMESPACE, POOL, Cluster, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2400)]
BACKLOG = 24
MAX_WORKERS = 3  # conftest.e2e_pool_manifests


@pytest.fixture(scope="module")
def clip(ffmpeg_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(ffmpeg_bin, tmp_path_factory.mktemp("e2e") / "clip.mp4", seconds=4)


async def poll(check: Callable[[], bool], timeout: float, what: str) -> None:
    """wait_for without blocking the event loop (kubectl runs in a thread)."""
    await asyncio.to_thread(wait_for, check, timeout, what)


def _workers(cluster: Cluster) -> int:
    return int(cluster.jsonpath(f"deployment/{POOL}-worker", "{.spec.replicas}") or 0)


def _condition(cluster: Cluster, kind: str) -> str:
    return cluster.jsonpath(
        f"ffmpegpool/{POOL}", f'{{.status.conditions[?(@.type=="{kind}")].status}}'
    )


def test_pool_becomes_ready_with_owned_children(cluster: Cluster, pool: str) -> None:
    wait_for(lambda: _condition(cluster, "Ready") == "True", 180, "Ready=True on the pool")
    assert _condition(cluster, "TopologyReady") == "True"
    uid = cluster.jsonpath(f"ffmpegpool/{pool}", "{.metadata.uid}")
    for child in (
        f"deployment/{pool}-server",
        f"deployment/{pool}-worker",
        f"service/{pool}",
        f"configmap/{pool}-config",
    ):
        owners = cluster.jsonpath(child, "{.metadata.ownerReferences[*].uid}")
        assert owners == uid, child
    table = cluster.kubectl("-n", NAMESPACE, "get", "ffp", pool)
    assert "WORKERS" in table
    assert "QUEUE" in table


async def test_job_through_the_pool_service(
    cluster: Cluster,
    pool: str,
    port_forward: Callable[..., dict[int, int]],
    clip: Path,
    tmp_path: Path,
    token: str,
) -> None:
    ports = await asyncio.to_thread(port_forward, f"service/{pool}", 80, 8081)
    ws, http = f"ws://127.0.0.1:{ports[80]}{names.WS_PATH}", f"http://127.0.0.1:{ports[8081]}"
    async with Client(ws, http_url=http, timeout=30, token=token) as client:
        upload_id = await client.upload(clip)
        spec = JobSpec(input=UploadInput(upload_id=upload_id), operation=ThumbnailOp(time=1.0))
        accepted = await client.submit(spec)
        # Workers start at zero: this also covers activation from zero.
        outcome = await asyncio.wait_for(client.wait(accepted.job_id), 300)
        assert isinstance(outcome, CompletedEvent), outcome
        [output] = outcome.outputs
        image = await client.download(output, tmp_path)
    assert image.stat().st_size > 1000


async def test_backlog_scales_workers_up_then_down(
    cluster: Cluster,
    pool: str,
    port_forward: Callable[..., dict[int, int]],
    clip: Path,
    token: str,
) -> None:
    ports = await asyncio.to_thread(port_forward, f"service/{pool}", 80, 8081)
    ws, http = f"ws://127.0.0.1:{ports[80]}{names.WS_PATH}", f"http://127.0.0.1:{ports[8081]}"
    operation = TranscodeOp(preset=Preset.MEDIUM, height=480)
    async with Client(ws, http_url=http, timeout=30, token=token) as client:
        upload_id = await client.upload(clip)
        spec = JobSpec(input=UploadInput(upload_id=upload_id), operation=operation)
        job_ids = [(await client.submit(spec)).job_id for _ in range(BACKLOG)]
        started = time.monotonic()
        await poll(lambda: _workers(cluster) == MAX_WORKERS, 120, f"{MAX_WORKERS} workers")
        scale_up_s = time.monotonic() - started
        outcomes = await asyncio.wait_for(
            asyncio.gather(*(client.wait(job_id) for job_id in job_ids)), 900
        )
    assert all(isinstance(o, CompletedEvent) for o in outcomes), [o.type for o in outcomes]
    # Empty queue: back to minReplicas (0) after the 15 s stabilization window (+ polling).
    await poll(lambda: _workers(cluster) == 0, 180, "workers back to 0")
    events = await asyncio.to_thread(
        cluster.kubectl,
        "-n",
        NAMESPACE,
        "get",
        "events",
        "-o",
        "json",
        "--field-selector",
        f"involvedObject.kind=FFmpegPool,involvedObject.name={pool}",
    )
    reasons = {e["reason"] for e in json.loads(events)["items"]}
    assert "Scaled" in reasons, reasons
    print(f"scale-up to {MAX_WORKERS} workers took {scale_up_s:.1f} s after the backlog")


def _queue_exists(management: str, queue: str) -> bool:
    request = urllib.request.Request(f"{management}/api/queues/%2F/{queue}")
    token = base64.b64encode(b"ffpool:ffpool-dev-password").decode()  # examples/rabbitmq-secret
    request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return bool(resp.status == 200)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return False
        raise


def test_deleting_the_pool_removes_children_and_keeps_queues(
    cluster: Cluster,
    pool: str,
    port_forward: Callable[..., dict[int, int]],
) -> None:
    cluster.kubectl(
        "-n", NAMESPACE, "delete", "ffmpegpool", pool, "--wait=true", "--timeout=120s", timeout=150
    )
    selector = f"{names.LABEL_POOL}={pool}"

    def children_gone() -> bool:
        out = cluster.kubectl(
            "-n",
            NAMESPACE,
            "get",
            "deployments,services,configmaps,pods",
            "-l",
            selector,
            "-o",
            "name",
        )
        return out.strip() == ""

    wait_for(children_gone, 180, "the pool's children to be garbage-collected")
    ports = port_forward("service/rabbitmq", 15672)
    assert _queue_exists(f"http://127.0.0.1:{ports[15672]}", names.JOB_QUEUE), (
        "deletionPolicy Retain must keep the job queue"
    )
