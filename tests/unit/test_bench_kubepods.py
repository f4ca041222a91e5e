"""The real-cluster mode's pod watcher (bench/kubepods.py): how it folds what the API shows of
the worker Deployment and its pods into the benchmark's figures, against a canned API."""

from typing import Any

from bench.kubepods import PodWatcher
from ffpool import names

SELECTOR = {"app": "w"}


class CannedKube:
    """`get` answers the Deployment, `list` the pods, as set between syncs."""

    def __init__(self) -> None:
        self.replicas = 0
        self.pods: list[dict[str, Any]] = []
        self.selectors: list[str] = []

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        return {"spec": {"replicas": self.replicas, "selector": {"matchLabels": SELECTOR}}}

    async def list(self, kind: str, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        self.selectors.append(label_selector)
        return self.pods


def pod(
    name: str, *, cost: int | None = None, deleting: bool = False, **status: Any
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if cost is not None:
        meta["annotations"] = {names.ANNOTATION_DELETION_COST: str(cost)}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "status": {"containerStatuses": [status]}}


async def test_lifetimes_victims_and_restarts() -> None:
    kube = CannedKube()
    watcher = PodWatcher(kube, "ns", "pool-worker")  # type: ignore[arg-type]
    kube.replicas, kube.pods = 2, [pod("a"), pod("b")]
    await watcher.sync()
    kube.replicas = 1
    kube.pods = [pod("a", cost=-1000, deleting=True, state={"running": {}}), pod("b")]
    await watcher.sync()
    assert [(name, cost) for _, name, cost in watcher.removals] == [("a", -1000)]
    assert watcher.alive() == 2, "a pod being deleted runs until its container ends"
    kube.pods = [
        pod("a", cost=-1000, deleting=True, state={"terminated": {"exitCode": 0}}),
        pod("b", restartCount=1, lastState={"terminated": {"exitCode": 1, "reason": "Error"}}),
    ]
    await watcher.sync()
    kube.replicas, kube.pods = 0, []
    await watcher.sync()
    assert [n for _, n in watcher.replica_log] == [2, 1, 0]
    assert kube.selectors == ["app=w"] * 4
    assert watcher.alive() == 0
    assert all(stop is not None and stop >= start for start, stop in watcher.spans())
    assert len(watcher.removals) == 1, "a deletion counts once"
    assert watcher.crash_reports() == {"b": ["restarted 1x; last: exit code 1, Error"]}
