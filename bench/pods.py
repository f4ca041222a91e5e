"""The benchmark's stand-in for the ReplicaSet controller and the kubelet (I/O): it watches the
worker Deployment's `spec.replicas` in the (KMock) API and keeps that many real `ffpool worker`
processes running, each with a Pod object carrying the Deployment's labels. On scale-down it
deletes the pods the ReplicaSet would (bench/replicaset.py) and sends them SIGTERM.

Workers get the environment the kubelet would build from the pod template (ConfigMap, Secret,
pod name), with node-local overrides: MEDIA_ROOT is a local directory, ports are ephemeral."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import signal
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import replicaset
from ffpool import logs
from ffpool_operator.kube.client import Kube, KubeError

log = logs.get(__name__)

FFPOOL = str(Path(sys.executable).with_name("ffpool"))
SYNC_SECONDS = 0.2
LOG_LINES = 200  # per worker, for the report on failure


@dataclass
class Worker:
    name: str
    seq: int
    proc: asyncio.subprocess.Process
    started: float
    ready_at: float | None = None
    stopped_at: float | None = None
    exited_at: float | None = None
    lines: collections.deque[str] = field(
        default_factory=lambda: collections.deque(maxlen=LOG_LINES)
    )
    reader: asyncio.Task[None] | None = None

    @property
    def live(self) -> bool:
        """Counted by the ReplicaSet: started and not asked to stop."""
        return self.stopped_at is None and self.exited_at is None

    @property
    def crashed(self) -> bool:
        """Exited without being asked to (the ReplicaSet replaces it)."""
        return self.exited_at is not None and self.stopped_at is None


@dataclass
class DeploymentFollower:
    """What the ReplicaSet stand-in and the real cluster's pod watcher (bench/kubepods.py) share:
    every SYNC_SECONDS they read the worker Deployment, log its `spec.replicas`, then `follow`."""

    kube: Kube
    namespace: str
    deployment: str
    replica_log: list[tuple[float, int]] = field(default_factory=list, kw_only=True)
    """(time, spec.replicas) at each change seen."""
    removals: list[tuple[float, str, int]] = field(default_factory=list, kw_only=True)
    """(time, pod, its deletion cost) of each pod removed by a scale-down."""

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.sync()
            except KubeError as exc:  # a failed sync changes nothing; the next one retries
                log.warning("sync failed", follower=type(self).__name__, error=str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SYNC_SECONDS)

    async def sync(self) -> None:
        dep = await self.kube.get("Deployment", self.namespace, self.deployment)
        if dep is None:
            return
        want = int(dep["spec"].get("replicas") or 0)
        if not self.replica_log or self.replica_log[-1][1] != want:
            self.replica_log.append((time.monotonic(), want))
        await self.follow(dep, want)

    async def follow(self, dep: dict[str, Any], want: int) -> None:
        raise NotImplementedError


@dataclass
class ReplicaSetStandIn(DeploymentFollower):
    overrides: dict[str, str]
    workers: list[Worker] = field(default_factory=list)
    _seq: int = 0

    async def follow(self, dep: dict[str, Any], want: int) -> None:
        live = [w for w in self.workers if w.live]
        if want > len(live):
            for _ in range(want - len(live)):
                await self._spawn(dep)
        elif want < len(live):
            await self._scale_down(live, len(live) - want)
        ready = sum(1 for w in self.workers if w.live and w.ready_at is not None)
        status = {"status": {"replicas": want, "readyReplicas": ready}}
        await self.kube.patch("Deployment", self.namespace, self.deployment, status, sub="status")

    async def _spawn(self, dep: dict[str, Any]) -> None:
        self._seq += 1
        name = f"{self.deployment}-{uuid.uuid4().hex[:5]}"
        await self.kube.create(replicaset.pod_manifest(dep, name))
        env = await pod_env(self.kube, self.namespace, dep, name)
        proc = await asyncio.create_subprocess_exec(
            FFPOOL,
            "worker",
            env={**os.environ, **env, **self.overrides},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # a Ctrl-C reaches the benchmark, which stops them itself
        )
        worker = Worker(name, self._seq, proc, time.monotonic())
        worker.reader = asyncio.create_task(_read(worker))
        self.workers.append(worker)

    async def _scale_down(self, live: list[Worker], remove: int) -> None:
        views = []
        for w in live:
            pod = await self.kube.get("Pod", self.namespace, w.name)
            annotations = ((pod or {}).get("metadata") or {}).get("annotations")
            views.append(
                replicaset.PodView(
                    name=w.name,
                    seq=w.seq,
                    ready=w.ready_at is not None,
                    deletion_cost=replicaset.deletion_cost(annotations),
                )
            )
        chosen = set(replicaset.victims(views, remove))
        costs = {v.name: v.deletion_cost for v in views}
        for w in live:
            if w.name in chosen:
                self.removals.append((time.monotonic(), w.name, costs[w.name]))
                await self.kube.delete("Pod", self.namespace, w.name)
                w.stopped_at = time.monotonic()
                _signal(w, signal.SIGTERM)

    def spans(self) -> list[tuple[float, float | None]]:
        return [(w.started, w.exited_at) for w in self.workers]

    def alive(self) -> int:
        return sum(1 for w in self.workers if w.exited_at is None)

    def crash_reports(self) -> dict[str, list[str]]:
        """The last lines of each worker that exited without being asked to."""
        return {w.name: list(w.lines) for w in self.workers if w.crashed}

    async def shutdown(self, timeout: float = 20.0) -> None:
        """SIGTERM every worker still running; SIGKILL (its whole process group, FFmpeg
        included) whatever is left after `timeout`."""
        for w in self.workers:
            if w.proc.returncode is None:
                w.stopped_at = w.stopped_at or time.monotonic()
                _signal(w, signal.SIGTERM)
        readers = {w.reader for w in self.workers if w.reader is not None and not w.reader.done()}
        if not readers:
            return
        _, pending = await asyncio.wait(readers, timeout=timeout)
        if pending:
            for w in self.workers:
                if w.proc.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(w.proc.pid, signal.SIGKILL)
            await asyncio.wait(pending, timeout=5)


async def pod_env(kube: Kube, namespace: str, dep: dict[str, Any], pod: str) -> dict[str, str]:
    """The environment the kubelet would give a pod of this Deployment named `pod`."""
    raw = dep["spec"]["template"]["spec"]["containers"][0]
    container = replicaset.Container.model_validate(raw)
    maps: dict[str, dict[str, str]] = {}
    for src in container.env_from:
        if src.config_map_ref is not None:
            cm = await kube.get("ConfigMap", namespace, src.config_map_ref.name)
            maps[src.config_map_ref.name] = dict((cm or {}).get("data") or {})
    secrets: dict[str, dict[str, str]] = {}
    for var in container.env:
        ref = var.value_from.secret_key_ref if var.value_from else None
        if ref is not None and ref.name not in secrets:
            secret = await kube.get("Secret", namespace, ref.name)
            secrets[ref.name] = replicaset.secret_data(secret or {})
    return replicaset.container_env(container, maps, secrets, pod)


def _signal(worker: Worker, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        worker.proc.send_signal(sig)


async def _read(worker: Worker) -> None:
    stream = worker.proc.stderr
    assert stream is not None
    async for raw in stream:
        line = raw.decode(errors="replace").rstrip()
        worker.lines.append(line)
        if worker.ready_at is None and "service ready" in line:
            worker.ready_at = time.monotonic()
    await worker.proc.wait()
    worker.exited_at = time.monotonic()
