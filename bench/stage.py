"""One benchmark run's world, torn down on exit (even on Ctrl-C or an error): a private media
directory, unique broker names, KMock with the secret and the pool, the pool's children (by the
real operator, or by the operator's reconcile functions when a KEDA policy scales instead), the
ReplicaSet stand-in and a submitter. Queues, exchanges and policies with the run's prefix are
deleted. The steps after the API server are shared with the real cluster's runs
(bench/realcluster.py), which put a watcher of real pods where the stand-in is."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import aiohttp

from bench import fakecluster
from bench.burst import Submitter, make_media, settings_from_env
from bench.pods import ReplicaSetStandIn, pod_env
from ffpool import logs, names
from ffpool_operator.broker.management import segment
from ffpool_operator.flows import reconcile_io
from ffpool_operator.kube.client import Kube
from ffpool_operator.spec.pool import PoolRef, PoolSpec
from tests.operator_harness.helpers import MGMT_URL, NS, Broker, b64
from tests.operator_harness.helpers import pool as pool_body
from tests.operator_harness.helpers import secret as secret_body

log = logs.get(__name__)
WORKER_DEPLOYMENT = "pool-worker"
SETUP_SECONDS = 30.0
T = TypeVar("T")


@dataclass(frozen=True)
class Scenario:
    jobs: int
    clip_seconds: float
    clip_size: str
    max_workers: int
    jobs_per_worker: int
    drain_seconds: int
    polling_seconds: float
    window_seconds: float
    long_jobs: int
    """Our scale-down stabilization (set explicitly: the test helper's pool body says 2 s)."""


class Fleet(Protocol):
    """What runs the worker pods and counts them: the ReplicaSet stand-in on KMock
    (bench/pods.py), or a watcher of the real controller's pods (bench/kubepods.py)."""

    replica_log: list[tuple[float, int]]
    removals: list[tuple[float, str, int]]

    async def run(self, stop: asyncio.Event) -> None: ...
    async def shutdown(self) -> None: ...
    def spans(self) -> list[tuple[float, float | None]]: ...
    def alive(self) -> int: ...
    def crash_reports(self) -> dict[str, list[str]]: ...


@dataclass
class Stage:
    kube: Kube
    broker: Broker
    pool: PoolRef
    spec: PoolSpec
    rs: Fleet
    submitter: Submitter


class StageFactory(Protocol):
    def __call__(
        self, sc: Scenario, *, operator: bool
    ) -> contextlib.AbstractAsyncContextManager[Stage]: ...


def pool_manifest(broker: Broker, sc: Scenario) -> dict[str, Any]:
    p = broker.prefix
    autoscaling: dict[str, Any] = {
        "pollingIntervalSeconds": sc.polling_seconds,
        "minReplicas": 0,
        "maxReplicas": sc.max_workers,
        "scaleDownStabilizationSeconds": sc.window_seconds,
    }
    topology = {
        "eventsExchange": f"{p}.events",
        "controlExchange": f"{p}.control",
        "driftCheckSeconds": 30,  # the spec default (the test helper's is 1 s)
    }
    return pool_body(
        broker,
        workers={"jobsPerWorker": sc.jobs_per_worker, "drainSeconds": sc.drain_seconds},
        autoscaling=autoscaling,
        topology=topology,
        env={"FFMPEG_THREADS": "1"},  # one core per job: 2-core machine, several workers
    )


@contextlib.asynccontextmanager
async def stage(sc: Scenario, *, operator: bool) -> AsyncIterator[Stage]:
    async with contextlib.AsyncExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="ffpool-autoscale-"))
        stack.callback(shutil.rmtree, workdir, True)
        media = workdir / "media"
        await asyncio.to_thread(make_media, media, sc.clip_seconds, sc.clip_size, sc.long_jobs > 0)
        broker = Broker(f"ffautoscale{uuid.uuid4().hex[:8]}")
        stack.push_async_callback(cleanup_broker, broker)
        _, kube = await stack.enter_async_context(fakecluster.api_server(workdir))
        await kube.create(secret_body())
        pool, spec = await create_pool(kube, pool_manifest(broker, sc))
        await make_children(stack, kube, broker, pool, spec, operator=operator)
        overrides = {
            "MEDIA_ROOT": str(media),
            "HTTP_PORT": "0",
            "WS_PORT": "0",
            "OPS_PORT": "0",
            "HOST": "127.0.0.1",
        }
        rs = ReplicaSetStandIn(kube, NS, WORKER_DEPLOYMENT, overrides)
        yield Stage(kube, broker, pool, spec, rs, await start_load(stack, kube, pool, rs, media))


async def create_pool(kube: Kube, body: dict[str, Any]) -> tuple[PoolRef, PoolSpec]:
    created = await kube.create(body)
    meta = created["metadata"]
    ref = PoolRef(name=meta["name"], namespace=meta["namespace"], uid=meta["uid"])
    return ref, reconcile_io.parse_spec(created["spec"])


async def make_children(
    stack: contextlib.AsyncExitStack,
    kube: Kube,
    broker: Broker,
    pool: PoolRef,
    spec: PoolSpec,
    *,
    operator: bool,
) -> None:
    """The pool's children: by the real operator, running until the stack closes; or, when a
    KEDA policy scales instead, once by the operator's reconcile functions (then only the KEDA
    stand-in changes the replicas, and nothing marks idle pods)."""
    if operator:
        await stack.enter_async_context(fakecluster.operator_running())
        await _topology_ready(kube, pool)
    else:
        await reconcile_io.sync_topology(broker.api, pool, spec)
        await reconcile_io.apply_children(kube, pool, spec)


async def _until(fetch: Callable[[], Awaitable[T | None]]) -> T:
    """Poll until `fetch` returns something truthy, or fail at the setup deadline."""
    deadline = asyncio.get_running_loop().time() + SETUP_SECONDS
    while not (found := await fetch()):
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"setup: not ready within {SETUP_SECONDS} s")
        await asyncio.sleep(0.1)
    return found


async def start_load(
    stack: contextlib.AsyncExitStack, kube: Kube, pool: PoolRef, fleet: Fleet, media: Path
) -> Submitter:
    """The fleet running until the stack closes, and a submitter configured as the pool's pods
    are (its ConfigMap and Secret), with `media` as its MEDIA_ROOT."""
    stop = asyncio.Event()
    task = asyncio.create_task(fleet.run(stop))
    stack.push_async_callback(_stop_fleet, fleet, stop, task)
    dep = await _until(lambda: kube.get("Deployment", pool.namespace, WORKER_DEPLOYMENT))
    env = await pod_env(kube, pool.namespace, dep, "bench-submitter")
    submitter = Submitter(settings_from_env(env, media, "bench-submitter"))
    await stack.enter_async_context(submitter)
    return submitter


async def _topology_ready(kube: Kube, pool: PoolRef) -> None:
    async def ready() -> bool | None:
        body = await kube.get(names.CRD_KIND, pool.namespace, pool.name)
        conds = ((body or {}).get("status") or {}).get("conditions") or []
        return any(c["type"] == "TopologyReady" and c["status"] == "True" for c in conds)

    await _until(ready)


async def _stop_fleet(fleet: Fleet, stop: asyncio.Event, task: Any) -> None:
    stop.set()
    await asyncio.wait({task}, timeout=5)
    await fleet.shutdown()


async def cleanup_broker(broker: Broker) -> None:
    """The helper's cleanup (job queue, DLQ, job exchange, its namespace's policy), then every
    queue, exchange and policy still naming the run's prefix (events, control, per-process
    queues; the pool's policy in another namespace)."""
    await broker.cleanup()
    vh = segment("/")
    for kind, key in (("queues", "name"), ("exchanges", "name"), ("policies", "pattern")):
        for item in await _listing(kind):
            if broker.prefix in str(item.get(key, "")):
                await broker.raw("DELETE", f"/{kind}/{vh}/{segment(item['name'])}")


async def _listing(kind: str) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Basic {b64('guest:guest')}"}
    async with (
        aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=5)) as s,
        s.get(f"{MGMT_URL}/api/{kind}/%2F") as resp,
    ):
        items: list[dict[str, Any]] = await resp.json()
    return items
