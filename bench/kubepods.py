"""The worker pods of a real cluster, as the autoscaling benchmark counts them (its `--cluster`
mode, bench/realcluster.py). The real ReplicaSet controller creates and deletes them and the
kubelet runs them; this only looks, every SYNC_SECONDS, at the worker Deployment's
`spec.replicas` and at its pods, and offers the benchmark what the ReplicaSet stand-in
(bench/pods.py) offers: the replica timeline, each pod's lifetime, the scale-downs' victims with
the deletion cost they had, and the pods whose container exited without being asked to.

A pod's lifetime runs from when it is first listed (within SYNC_SECONDS of its creation: the
node is charged for it from then on, start-up included) until its container is reported
terminated after its deletion began, or until it is gone from the API, whichever is seen first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from bench import replicaset
from bench.pods import DeploymentFollower


@dataclass
class PodLife:
    seen: float
    gone: float | None = None
    deleting: bool = False
    restarts: int = 0
    last_exit: str = ""


def _container_status(pod: dict[str, Any]) -> dict[str, Any]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or [{}]
    return dict(statuses[0])


@dataclass
class PodWatcher(DeploymentFollower):
    pods: dict[str, PodLife] = field(default_factory=dict)

    async def follow(self, dep: dict[str, Any], want: int) -> None:
        labels = dep["spec"]["selector"]["matchLabels"]
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        listed = await self.kube.list("Pod", self.namespace, selector)
        now = time.monotonic()
        for pod in listed:
            self._observe(pod, now)
        names = {pod["metadata"]["name"] for pod in listed}
        for name, life in self.pods.items():
            if name not in names and life.gone is None:
                life.gone = now

    def _observe(self, pod: dict[str, Any], now: float) -> None:
        meta = pod["metadata"]
        life = self.pods.setdefault(meta["name"], PodLife(seen=now))
        if meta.get("deletionTimestamp") and not life.deleting:
            # Annotations as they were when the controller chose this pod: it never edits them.
            life.deleting = True
            cost = replicaset.deletion_cost(meta.get("annotations"))
            self.removals.append((now, meta["name"], cost))
        status = _container_status(pod)
        life.restarts = int(status.get("restartCount") or 0)
        last = (status.get("lastState") or {}).get("terminated")
        if last:
            life.last_exit = f"exit code {last.get('exitCode')}, {last.get('reason')}"
        terminated = (status.get("state") or {}).get("terminated")
        if life.deleting and terminated and life.gone is None:
            life.gone = now

    async def shutdown(self) -> None:
        """Nothing to stop: the pods go with the pool (the stage deletes it)."""

    def spans(self) -> list[tuple[float, float | None]]:
        return [(life.seen, life.gone) for life in self.pods.values()]

    def alive(self) -> int:
        return sum(1 for life in self.pods.values() if life.gone is None)

    def crash_reports(self) -> dict[str, list[str]]:
        """Pods whose container the kubelet had to restart, with how it last ended."""
        return {
            name: [f"restarted {life.restarts}x; last: {life.last_exit or 'unknown'}"]
            for name, life in self.pods.items()
            if life.restarts > 0
        }
