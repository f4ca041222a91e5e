"""Job dispatch throughput and latency of the RabbitMQ backend, against raw aio-pika.

Whole path: WebSocket `submit` → server → broker (confirmed) → worker → events exchange →
`completed` at the client, with the FFmpeg step replaced by a no-op executor. The service runs
in its own process (as `ffpool serve` would); 100 clients in this one, each submitting and
waiting for `completed` in a loop. Then, in the same run, the raw baseline: aio-pika publish
with confirms → consume with ack, with the same number of concurrent producers; and the same
clients against the embedded memory backend, which is the WebSocket path's cost alone.

    .venv/bin/python -m bench.dispatch [--jobs 5000] [--clients 100] [--slots 16] [--split]

It also prints how the CPU splits between the processes (clients, service, the broker's Erlang
VM), read from /proc over the timed phase: on a shared machine CPU ms per job is steadier than
jobs/s. `--skip-raw` prints the service's figures alone on one line (A/B runs of a change).

Goals (README, "RabbitMQ dispatch"): ≥ 1,000 complete jobs/s with 100 clients,
submit→accepted p99 ≤ 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

from bench.measure import (
    JOB,
    broker_pid,
    cpu_snapshot,
    figures,
    run_raw,
    start_process,
    stop,
)
from ffpool import logs
from ffpool.backends.base import JobBackend, ServiceBackend
from ffpool.backends.memory import MemoryBackend
from ffpool.backends.rabbitmq import build_node, build_server, build_worker
from ffpool.domain.events import CompletedEvent, FailedEvent, ProgressEvent
from ffpool.domain.jobs import Job
from ffpool.metrics import Metrics
from ffpool.server.ws import start_ws_server
from ffpool.settings import Settings
from tests.integration.rabbit_harness import AMQP_URL, delete_topology, topology_env


class NoopExecutor:
    async def execute(
        self, job: Job, on_progress: Callable[[ProgressEvent], None]
    ) -> CompletedEvent | FailedEvent:
        return CompletedEvent(job_id=job.id, processing_time_s=0.0)


async def serve(
    prefix: str, slots: int, role: str, url: str = AMQP_URL, env: dict[str, Any] | None = None
) -> None:
    """The service side, in its own process: backend (+ WebSocket server), no-op FFmpeg.
    `serve` = server and workers in one process; `server` / `worker` = one side each. `env`:
    the topology and any other settings (default: the local broker's topology for `prefix`)."""
    logs.configure("WARNING")
    media = Path(tempfile.mkdtemp(prefix="ffpool-bench-"))
    settings = Settings(
        backend="rabbitmq",
        rabbitmq_url=url,
        host="127.0.0.1",
        ws_port=0,
        media_root=media,
        instance_name=f"bench-{role}",
        max_concurrent_jobs=slots,
        max_retained_jobs=100_000,
        # One anonymous tenant sends everything: its limits are not what is measured.
        tenant_submits_per_second=100_000,
        tenant_max_active_jobs=1_000_000,
        tenant_max_connections=100_000,
        max_retained_bytes=1 << 30,
        **(topology_env(prefix) if env is None else env),
    )
    metrics = Metrics()
    backend: ServiceBackend
    jobs: JobBackend | None
    if role == "memory":  # the WebSocket path alone: same server code, no broker
        backend = jobs = MemoryBackend(settings, NoopExecutor(), metrics)
    elif role == "server":
        backend = jobs = build_server(settings, metrics)
    elif role == "worker":
        backend, jobs = build_worker(settings, metrics, NoopExecutor()), None
    else:
        backend = jobs = build_node(settings, metrics, NoopExecutor())
    await backend.start()
    ws = await start_ws_server(jobs, settings, metrics) if jobs is not None else None
    port = next(iter(ws.sockets)).getsockname()[1] if ws else 0
    print(f"READY {port}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until EOF
    if ws is not None:
        ws.close()
    await backend.stop()


async def spawn(prefix: str, slots: int, role: str) -> tuple[asyncio.subprocess.Process, int]:
    profile = ["--profile", PROFILE] if PROFILE else []
    args = ["--serve", prefix, "--slots", str(slots), "--role", role, *profile]
    return await start_process("bench.dispatch", args, role)


PROFILE = ""  # set from --profile: the service processes write cProfile stats there


async def ws_client(
    url: str, count: int, accepted: list[float], done: list[float], interval: float = 0.0
) -> None:
    """Submit `count` jobs one after another, each waiting for `completed`; with `interval`,
    paced: one submission per interval at most (an open-loop rate, below saturation)."""
    async with connect(url, max_size=2**22) as ws:
        next_at = time.perf_counter() + random.uniform(0, interval)
        for _ in range(count):
            if interval:
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
                next_at += interval
            t0 = time.perf_counter()
            await ws.send(json.dumps({"type": "submit", "job": JOB}))
            while True:
                msg = json.loads(await ws.recv())
                if msg["type"] == "accepted":
                    accepted.append(time.perf_counter() - t0)
                elif msg["type"] in ("completed", "failed", "error"):
                    assert msg["type"] == "completed", msg
                    done.append(time.perf_counter() - t0)
                    break


async def drive(
    url: str, jobs: int, clients: int, pids: dict[str, int | None], warmup: int, interval: float
) -> tuple[dict[str, float], dict[str, float]]:
    """Warm up, then `clients` clients submit `jobs` in all: the figures of the timed phase and
    the CPU seconds each of `pids` spent over it."""
    await asyncio.gather(*(ws_client(url, warmup, [], []) for _ in range(clients)))
    accepted: list[float] = []
    done: list[float] = []
    cpu0 = cpu_snapshot(pids)
    t0 = time.perf_counter()
    per = jobs // clients
    await asyncio.gather(*(ws_client(url, per, accepted, done, interval) for _ in range(clients)))
    elapsed = time.perf_counter() - t0
    cpu = {k: v - cpu0[k] for k, v in cpu_snapshot(pids).items()}
    return figures(accepted, done, elapsed), {k: v / elapsed for k, v in cpu.items()}


async def run_service(
    jobs: int, clients: int, slots: int, split: bool, rate: float = 0.0, memory: bool = False
) -> dict[str, float]:
    prefix = f"ffbench.{uuid.uuid4().hex[:8]}"
    roles = ["memory"] if memory else ["server", "worker"] if split else ["serve"]
    started = [await spawn(prefix, slots, role) for role in roles]
    try:
        url = f"ws://127.0.0.1:{started[0][1]}/ws"
        services = {role: proc.pid for role, (proc, _) in zip(roles, started, strict=True)}
        pids = {"clients": os.getpid(), **services, "broker": broker_pid()}
        interval = clients / rate if rate else 0.0
        res, cpu = await drive(url, jobs, clients, pids, 5, interval)
    finally:
        await stop(started)
        if not memory:
            await delete_topology(prefix)
    return {**{f"cpu_{k}": v for k, v in cpu.items()}, **res}


async def main(args: argparse.Namespace) -> None:
    global PROFILE
    PROFILE = args.profile or ""
    if args.skip_raw:  # one machine-readable line, for A/B runs of a change
        svc = await run_service(args.jobs, args.clients, args.slots, args.split, args.rate)
        print(" ".join(f"{k}={v:.2f}" for k, v in svc.items()))
        return
    raw = await run_raw(args.jobs, args.clients, args.slots)
    svc = await run_service(args.jobs, args.clients, args.slots, args.split, args.rate)
    mem = await run_service(args.jobs, args.clients, args.slots, False, args.rate, memory=True)
    layout = "server + worker processes" if args.split else "one `serve` process"
    print(f"jobs={args.jobs} clients={args.clients} slots={args.slots} ({layout})")
    print(
        f"raw aio-pika confirm→consume/ack : {raw['jobs_s']:8.0f} jobs/s   "
        f"p50 {raw['done_p50']:.1f} ms  p99 {raw['done_p99']:.1f} ms"
    )
    print(
        f"ffpool WS submit→completed      : {svc['jobs_s']:8.0f} jobs/s   "
        f"p50 {svc['done_p50']:.1f} ms  p99 {svc['done_p99']:.1f} ms"
    )
    print(
        f"ffpool submit→accepted          :   p50 {svc['acc_p50']:.1f} ms  "
        f"p99 {svc['acc_p99']:.1f} ms"
    )
    print(f"ratio ffpool/raw                : {svc['jobs_s'] / raw['jobs_s']:.2f}")
    print(
        f"WebSocket path alone (memory)   : {mem['jobs_s']:8.0f} jobs/s   "
        f"p50 {mem['done_p50']:.1f} ms  p99 {mem['done_p99']:.1f} ms   "
        f"accepted p50 {mem['acc_p50']:.1f} ms  p99 {mem['acc_p99']:.1f} ms"
    )
    for label, res in (("raw", raw), ("ffpool", svc), ("memory", mem)):
        shares = [(k[4:], v) for k, v in res.items() if k.startswith("cpu_")]
        print(
            f"CPU {label:<6} (cores busy, ms/job)  : "
            + "  ".join(f"{name} {v:.2f} ({v / res['jobs_s'] * 1000:.2f})" for name, v in shares)
        )
    ok = svc["jobs_s"] >= 1000 and svc["acc_p99"] <= 20
    print(f"goal (≥1000 jobs/s, accepted p99 ≤ 20 ms): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--slots", type=int, default=16)
    parser.add_argument("--split", action="store_true", help="server and worker processes")
    parser.add_argument(
        "--rate", type=float, default=0.0, help="offered jobs/s (paced clients); default: flat out"
    )
    parser.add_argument("--skip-raw", action="store_true", help="ffpool only, one line (A/B)")
    parser.add_argument("--serve", metavar="PREFIX", help=argparse.SUPPRESS)
    parser.add_argument("--role", default="serve", help=argparse.SUPPRESS)
    parser.add_argument("--profile", metavar="DIR", help="write cProfile stats per service process")
    ns = parser.parse_args()
    if ns.serve and ns.profile:
        import cProfile

        cProfile.run(
            "asyncio.run(serve(ns.serve, ns.slots, ns.role))", f"{ns.profile}/{ns.role}.pstats"
        )
    else:
        asyncio.run(serve(ns.serve, ns.slots, ns.role) if ns.serve else main(ns))
