"""One benchmark run's world, torn down on exit (even on Ctrl-C or an error): a private media
directory, unique broker names, KMock with the secret and the pool, the pool's children (by the
real operator, or by the operator's reconcile functions when a KEDA policy scales instead), the
ReplicaSet stand-in and a submitter. Queues and exchanges with the run's prefix are deleted."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from bench import fakecluster
from bench.burst import Submitter, make_media, settings_from_env
from bench.pods import ReplicaSetStandIn
from ffpool import logs, names
from ffpool_operator import reconcile
from ffpool_operator.kube import Kube
from ffpool_operator.mgmt import segment
from ffpool_operator.models import PoolRef, PoolSpec
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


@dataclass
class Stage:
    kube: Kube
    broker: Broker
    pool: PoolRef
    spec: PoolSpec
    rs: ReplicaSetStandIn
    submitter: Submitter


def _pool(broker: Broker, sc: Scenario) -> dict[str, Any]:
    p = broker.prefix
    autoscaling: dict[str, Any] = {
        "pollingIntervalSeconds": sc.polling_seconds, "minReplicas": 0,
        "maxReplicas": sc.max_workers, "scaleDownStabilizationSeconds": sc.window_seconds,
    }  # fmt: skip
    topology = {
        "eventsExchange": f"{p}.events", "controlExchange": f"{p}.control",
        "driftCheckSeconds": 30,  # the spec default (the test helper's is 1 s)
    }  # fmt: skip
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
        stack.push_async_callback(_cleanup_broker, broker)
        _, kube = await stack.enter_async_context(fakecluster.api_server(workdir))
        pool, spec = await _create_pool(kube, broker, sc)
        if operator:
            await stack.enter_async_context(fakecluster.operator_running())
            await _topology_ready(kube)
        else:
            await reconcile.sync_topology(broker.api, pool, spec)
            await reconcile.apply_children(kube, pool, spec)
        overrides = {"MEDIA_ROOT": str(media), "HTTP_PORT": "0", "WS_PORT": "0",
                     "HOST": "127.0.0.1"}  # fmt: skip
        rs = ReplicaSetStandIn(kube, NS, WORKER_DEPLOYMENT, overrides)
        dep = await _until(lambda: kube.get("Deployment", NS, WORKER_DEPLOYMENT))
        env = await rs.pod_env(dep, "bench-submitter")
        stop = asyncio.Event()
        task = asyncio.create_task(rs.run(stop))
        stack.push_async_callback(_stop_replicaset, rs, stop, task)
        submitter = Submitter(settings_from_env(env, media, "bench-submitter"))
        await stack.enter_async_context(submitter)
        yield Stage(kube, broker, pool, spec, rs, submitter)


async def _create_pool(kube: Kube, broker: Broker, sc: Scenario) -> tuple[PoolRef, PoolSpec]:
    await kube.create(secret_body())
    created = await kube.create(_pool(broker, sc))
    meta = created["metadata"]
    ref = PoolRef(name=meta["name"], namespace=meta["namespace"], uid=meta["uid"])
    return ref, reconcile.parse_spec(created["spec"])


async def _until(fetch: Callable[[], Awaitable[T | None]]) -> T:
    """Poll until `fetch` returns something truthy, or fail at the setup deadline."""
    deadline = asyncio.get_running_loop().time() + SETUP_SECONDS
    while not (found := await fetch()):
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"setup: not ready within {SETUP_SECONDS} s")
        await asyncio.sleep(0.1)
    return found


async def _topology_ready(kube: Kube) -> None:
    async def ready() -> bool | None:
        body = await kube.get(names.CRD_KIND, NS, "pool")
        conds = ((body or {}).get("status") or {}).get("conditions") or []
        return any(c["type"] == "TopologyReady" and c["status"] == "True" for c in conds)

    await _until(ready)


async def _stop_replicaset(rs: ReplicaSetStandIn, stop: asyncio.Event, task: Any) -> None:
    stop.set()
    await asyncio.wait({task}, timeout=5)
    await rs.shutdown()


async def _cleanup_broker(broker: Broker) -> None:
    """The helper's cleanup (job queue, DLQ, job exchange, policy), then every queue and
    exchange still carrying the run's prefix (events, control, per-process queues)."""
    await broker.cleanup()
    vh = segment("/")
    for kind in ("queues", "exchanges"):
        for name in await _names(kind, broker.prefix):
            await broker.raw("DELETE", f"/{kind}/{vh}/{segment(name)}")


async def _names(kind: str, prefix: str) -> list[str]:
    headers = {"Authorization": f"Basic {b64('guest:guest')}"}
    async with (
        aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=5)) as s,
        s.get(f"{MGMT_URL}/api/{kind}/%2F", params={"columns": "name"}) as resp,
    ):
        items = await resp.json()
    return [i["name"] for i in items if str(i.get("name", "")).startswith(prefix)]
