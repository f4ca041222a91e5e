"""An upgrade mid-burst on the real cluster (docs/operator.md, "Upgrades"): jobs go in through
the pool's Ingress while the pool's image changes; the operator rolls the servers, waits for
their rollout to complete, then rolls the workers. Every accepted job completes exactly once
(none lost, stuck, failed or run twice), the servers' rollout completed before the workers got
the new image, and the pool ends Ready with `Upgrading=False`.

The new image is the same build under a second name (`localhost/ffpool:upgrade`): the image
string changes, so both Deployments roll, which is what the ordering is about; the wire
format's rules for versions that differ are unit-tested (tests/unit/test_rabbit_wire.py)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import WebSocketException

from bench.ledger import Ledger
from ffpool import names
from ffpool.client.session import Client, Outcome
from ffpool.domain.events import CompletedEvent, JobEvent, JobState, StateEvent
from ffpool.domain.jobs import JobSpec, Preset, TranscodeOp, UploadInput
from tests.cluster.conftest import EXAMPLE_SERVICE_IMAGE, SERVICE_IMAGE
from tests.cluster.controlplane import ControlPlane
from tests.cluster.ingress import IngressController
from tests.cluster.node import Node
from tests.cluster.pool import (
    POOL,
    POOL_NS,
    Sampler,
    condition,
    get,
    rolled_out,
    wait_ready,
)
from tests.conftest import make_clip
from tests.polling import poll_until

pytestmark = [pytest.mark.cluster, pytest.mark.upgrade, pytest.mark.timeout(600)]
OLD, NEW = EXAMPLE_SERVICE_IMAGE, "localhost/ffpool:upgrade"
FIRST_WAVE = 15  # submitted at once, before the image changes: a backlog to upgrade under
EVERY_S = 2.0  # then one job every this long, until the workers have rolled too
AFTER_WORKERS = 3  # jobs submitted once the workers got the new image
# Bounds the burst: a server rollout takes about 45 s on a 2-core machine (2 pods), so
# about 40 jobs in all; 70 allows twice that before the test gives up.
MAX_JOBS = 70
RETRYABLE = (ConnectionError, OSError, TimeoutError, WebSocketException)


@dataclass
class Sample:
    at: float
    server_image: str
    server_complete: bool
    worker_image: str
    upgrading: str | None


def _image(deployment: dict[str, Any]) -> str:
    return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])


def _complete(deployment: dict[str, Any]) -> bool:
    """Every replica runs the current template and is ready, no old pod left."""
    meta, status = deployment["metadata"], deployment.get("status") or {}
    want = deployment["spec"].get("replicas", 1)
    return bool(
        status.get("observedGeneration") == meta["generation"]
        and status.get("updatedReplicas") == want
        and status.get("readyReplicas") == want
        and status.get("replicas") == want
    )


class RolloutLog(Sampler):
    """Both Deployments and the pool's `Upgrading` condition over time."""

    def __init__(self, plane: ControlPlane) -> None:
        super().__init__(plane)
        self.samples: list[Sample] = []

    def sample(self) -> None:
        selector = f"{names.LABEL_POOL}={POOL}"
        found = get(self.plane, "deployment", "-l", selector).get("items") or []
        by_name = {d["metadata"]["name"]: d for d in found}
        pool = get(self.plane, "ffp", POOL)
        conds = (pool.get("status") or {}).get("conditions") or []
        cond = next((c for c in conds if c["type"] == "Upgrading"), None)
        upgrading = None if cond is None else f"{cond['status']}/{cond['reason']}"
        server, worker = by_name.get(f"{POOL}-server"), by_name.get(f"{POOL}-worker")
        if server is None or worker is None:
            return
        self.samples.append(
            Sample(
                at=time.monotonic(),
                server_image=_image(server),
                server_complete=_complete(server),
                worker_image=_image(worker),
                upgrading=upgrading,
            )
        )

    def first(self, check: Any) -> Sample | None:
        return next((s for s in list(self.samples) if check(s)), None)


def _note(ledger: Ledger, event: JobEvent) -> None:
    """A re-subscription after a server went away starts with the job's state again: a
    `running` snapshot naming the slot already recorded is that, not a second start."""
    track = ledger.jobs.get(event.job_id)
    snapshot = (
        isinstance(event, StateEvent)
        and event.state is JobState.RUNNING
        and track is not None
        and track.runs[-1:] == [event.worker]
    )
    if not snapshot:
        ledger.ingest(event, time.monotonic())


@dataclass
class Burst:
    ws_url: str
    http_url: str
    token: str
    spec: JobSpec
    ledger: Ledger = field(default_factory=lambda: Ledger(expected=set()))
    accepted: dict[str, float] = field(default_factory=dict)
    outcomes: dict[str, list[Outcome]] = field(default_factory=dict)

    def client(self) -> Client:
        return Client(self.ws_url, http_url=self.http_url, timeout=30, token=self.token)

    async def submit(self, key: str) -> str:
        """Through whichever server the Ingress picks, again with the same idempotency key
        when a server went away before answering: the same job, never a second one."""
        deadline = time.monotonic() + 120
        while True:
            try:
                async with self.client() as client:
                    job_id = (await client.submit(self.spec, idempotency_key=key)).job_id
            except RETRYABLE:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(1)
                continue
            self.accepted.setdefault(job_id, time.monotonic())
            self.ledger.expected.add(job_id)
            return job_id

    async def follow(self, job_id: str) -> None:
        deadline = time.monotonic() + 300
        while True:
            try:
                async with self.client() as client:
                    left = max(1.0, deadline - time.monotonic())
                    outcome = await client.follow(job_id, self.note, timeout=left)
            except RETRYABLE:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(1)
                continue
            self.outcomes.setdefault(job_id, []).append(outcome)
            return

    def note(self, event: JobEvent) -> None:
        _note(self.ledger, event)

    async def job(self, key: str) -> None:
        await self.follow(await self.submit(key))


def _reconciled(plane: ControlPlane) -> bool:
    pool = get(plane, "ffp", POOL)
    observed = (pool.get("status") or {}).get("observedGeneration")
    return bool(observed == pool["metadata"]["generation"])


def _prepare(plane: ControlPlane, node: Node) -> None:
    """The new image's name on the node, the Ingress on, workers small enough for three to fit
    the node (as in test_pool_lifecycle.py), autoscaling on (that file turns it off)."""
    node.containerd.ctr("images", "tag", "--force", SERVICE_IMAGE, NEW)
    patch = {
        "spec": {
            "servers": {"ingress": {"enabled": True, "host": "media.ffpool.test"}},
            "workers": {
                "resources": {
                    "requests": {"cpu": "100m", "memory": "128Mi"},
                    "limits": {"cpu": "1", "memory": "1Gi"},
                }
            },
            "autoscaling": {
                "enabled": True,
                "maxReplicas": 3,
                "pollingIntervalSeconds": 2,
                "scaleDownStabilizationSeconds": 10,
            },
            "env": {"FFMPEG_THREADS": "1"},
        }
    }
    plane.kubectl("patch", "ffp", POOL, "-n", POOL_NS, "--type=merge", "-p", json.dumps(patch))
    poll_until(lambda: get(plane, "ingress", POOL), timeout=60, what="the pool's Ingress")
    # The new env rolls the servers (unless test_pool_lifecycle.py patched the pool so before):
    # the operator has applied the patch, and that rollout is over, before the upgrade starts.
    poll_until(lambda: _reconciled(plane), timeout=60, what="the patch reconciled")
    poll_until(
        lambda: rolled_out(plane, f"{POOL}-server", 0),
        timeout=180,
        what="servers rolled out with the new env",
    )
    wait_ready(plane)


async def test_an_image_change_mid_burst_rolls_servers_first_and_loses_no_job(
    control_plane: ControlPlane,
    node: Node,
    pool: Path,
    ingress_controller: IngressController,
    pool_token: str,
    ffmpeg_bin: str,
    tmp_path: Path,
) -> None:
    await asyncio.to_thread(_prepare, control_plane, node)
    clip = make_clip(ffmpeg_bin, tmp_path / "clip.mp4", seconds=4, size="320x240")
    url = ingress_controller.url
    async with Client(
        url.replace("http://", "ws://") + names.WS_PATH, http_url=url, timeout=60, token=pool_token
    ) as uploader:
        upload = UploadInput(upload_id=await uploader.upload(clip))
    burst = Burst(
        url.replace("http://", "ws://") + names.WS_PATH,
        url,
        pool_token,
        JobSpec(input=upload, operation=TranscodeOp(preset=Preset.VERYFAST)),
    )
    tasks: list[asyncio.Task[None]] = []
    with RolloutLog(control_plane) as log:
        tasks += [asyncio.create_task(burst.job(f"upgrade-{i}")) for i in range(FIRST_WAVE)]
        await asyncio.to_thread(
            poll_until,
            lambda: len(burst.accepted) >= FIRST_WAVE,
            timeout=120,
            what="the first wave accepted",
        )
        image = {"spec": {"image": NEW}}
        await asyncio.to_thread(
            control_plane.kubectl,
            "patch",
            "ffp",
            POOL,
            "-n",
            POOL_NS,
            "--type=merge",
            "-p",
            json.dumps(image),
        )
        patched_at = time.monotonic()
        after_workers = 0
        while len(tasks) < MAX_JOBS and after_workers < AFTER_WORKERS:
            await asyncio.sleep(EVERY_S)
            tasks.append(asyncio.create_task(burst.job(f"upgrade-{len(tasks)}")))
            after_workers += log.first(lambda s: s.worker_image == NEW) is not None
        await asyncio.gather(*tasks)
        await asyncio.to_thread(
            poll_until,
            lambda: condition(control_plane, "Upgrading") == "False",
            timeout=240,
            what="Upgrading=False",
        )
    wait_ready(control_plane)

    # Every accepted job completed exactly once: one outcome, `completed`, one run.
    assert len(burst.accepted) == len(tasks)
    assert {j: len(o) for j, o in burst.outcomes.items()} == dict.fromkeys(burst.accepted, 1)
    assert all(isinstance(o[0], CompletedEvent) for o in burst.outcomes.values())
    assert burst.ledger.failed == 0
    # A run cut short and handed back (a worker pod replaced mid-job past its drain) is allowed:
    # the job still completed exactly once, above. How many were is printed below.
    interrupted = burst.ledger.interrupted
    # Mid-burst: jobs were taken both before the change and after the workers rolled.
    switched = log.first(lambda s: s.worker_image == NEW)
    assert switched is not None, "the workers never got the new image"
    assert max(burst.accepted.values()) > switched.at
    # The servers' rollout completed before the workers got the new image, and for a while the
    # servers ran the new image next to workers still on the old one.
    servers_done = log.first(lambda s: s.server_image == NEW and s.server_complete)
    assert servers_done is not None
    assert servers_done.at <= switched.at
    assert log.first(lambda s: s.server_image == NEW and s.worker_image == OLD) is not None
    assert log.first(lambda s: s.upgrading == "True/ServersRollingOut") is not None
    assert log.samples[-1].upgrading == "False/RolledOut"
    rolled = log.first(lambda s: s.upgrading == "False/RolledOut")
    print(
        f"upgrade: {len(tasks)} jobs ({len(interrupted)} handed back); after the image "
        f"change: servers complete "
        f"{servers_done.at - patched_at:.1f} s, workers' image {switched.at - patched_at:.1f} s, "
        f"RolledOut {(rolled.at if rolled else 0) - patched_at:.1f} s"
    )
    assert condition(control_plane, "Ready") == "True"
