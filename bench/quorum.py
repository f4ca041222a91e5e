"""Classic versus quorum job queues on the same three-node RabbitMQ cluster, in one run.

The cluster is the tests' (scripts/rabbitmq-cluster.sh: ffp1..3@localhost, AMQP 5701-5703),
used if it runs, else started for the run and stopped after. Each configuration gets its own
topology (unique names) and the same two processes: a server (the backend and WebSocket server
`ffpool server` runs) connected to ffp1 and a worker (SLOTS slots) connected to ffp2, the FFmpeg
step replaced by a no-op (as in bench/dispatch.py), so what differs is the queue alone.
`--clients` WebSocket clients then send a bounded burst of `--jobs` `probe` jobs, each client
submitting and waiting for `completed` in a loop; the configurations take turns, `--rounds`
times, and the medians are printed side by side: end-to-end jobs/s, submit→accepted p50/p99
(the server's confirmed publish: on a quorum queue, confirmed once a majority of its members
have it), submit→completed p50/p99, and the CPU the three broker nodes, the server and the
worker spent per job. In the same run the raw broker cost: aio-pika publishes with confirms
to ffp1 and consumes with acks on ffp2, per queue type.

    .venv/bin/python -m bench.quorum [--jobs 400] [--clients 20] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika

from bench.dispatch import NoopExecutor, cpu_seconds, pct, ws_client
from ffpool import logs
from ffpool.backends.base import JobBackend, ServiceBackend
from ffpool.backends.rabbitmq import build_server, build_worker
from ffpool.metrics import Metrics
from ffpool.server.ws import start_ws_server
from ffpool.settings import Settings
from ffpool.topology import Topology
from tests.integration.rabbit_harness import topology_env
from tests.rabbit_cluster import RabbitCluster, default_dir


@dataclass(frozen=True)
class Config:
    name: str
    queue_type: str
    bands: int


CONFIGS = (
    Config("classic", "classic", 1),
    Config("quorum, 1 band", "quorum", 1),
    Config("quorum, 3 bands", "quorum", 3),
)
SLOTS = 16


def topology(prefix: str, cfg: Config) -> dict[str, Any]:
    return topology_env(prefix, queue_type=cfg.queue_type, queue_priority_bands=cfg.bands)


async def serve(prefix: str, url: str, role: str, cfg: Config) -> None:
    """One service process (`server` or `worker`) until its stdin closes."""
    logs.configure("WARNING")
    settings = Settings(
        backend="rabbitmq",
        rabbitmq_url=url,
        host="127.0.0.1",
        ws_port=0,
        media_root=Path(tempfile.mkdtemp(prefix="ffpool-bench-")),
        instance_name=f"bench-{role}",
        max_concurrent_jobs=SLOTS,
        max_retained_jobs=100_000,
        # One anonymous tenant sends everything: its limits are not what is measured.
        tenant_submits_per_second=100_000,
        tenant_max_active_jobs=1_000_000,
        tenant_max_connections=100_000,
        max_retained_bytes=1 << 30,
        job_timeout_seconds=600,  # under the broker's consumer timeout: no warning printed
        **topology(prefix, cfg),
    )
    metrics = Metrics()
    backend: ServiceBackend
    jobs: JobBackend | None = None
    if role == "server":
        backend = jobs = build_server(settings, metrics)
    else:
        backend = build_worker(settings, metrics, NoopExecutor())
    await backend.start()
    ws = await start_ws_server(jobs, settings, metrics) if jobs is not None else None
    port = next(iter(ws.sockets)).getsockname()[1] if ws else 0
    print(f"READY {port}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until EOF
    if ws is not None:
        ws.close()
    await backend.stop()


LOGS = Path(tempfile.gettempdir()) / "ffpool-bench-quorum"


async def spawn(
    prefix: str, url: str, role: str, cfg: Config
) -> tuple[asyncio.subprocess.Process, int]:
    """A service process; its stderr goes to LOGS/<prefix>.<role>.log (shown if it fails)."""
    LOGS.mkdir(exist_ok=True)
    log = LOGS / f"{prefix}.{role}.log"
    with log.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.quorum",
            "--serve",
            prefix,
            "--url",
            url,
            "--role",
            role,
            "--config",
            str(CONFIGS.index(cfg)),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
        )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
    if not line.startswith("READY"):
        raise SystemExit(f"{role} did not start ({cfg.name}):\n{log.read_text()[-3000:]}")
    return proc, int(line.split()[1])


def broker_cpu(cluster: RabbitCluster) -> float:
    """CPU seconds of the three nodes' Erlang VMs so far."""
    pids = [cluster.pid_of(node.name) for node in cluster.nodes]
    return sum(cpu_seconds(pid) for pid in pids if pid is not None)


async def run_service(
    cluster: RabbitCluster, cfg: Config, jobs: int, clients: int
) -> dict[str, float]:
    prefix = f"ffbench.q.{uuid.uuid4().hex[:8]}"
    urls = cluster.amqp_urls()
    started = [await spawn(prefix, urls[0], "server", cfg)]
    started.append(await spawn(prefix, urls[1], "worker", cfg))
    try:
        ws = f"ws://127.0.0.1:{started[0][1]}/ws"
        await asyncio.gather(*(ws_client(ws, 2, [], []) for _ in range(clients)))  # warm-up
        accepted: list[float] = []
        done: list[float] = []
        pids = [proc.pid for proc, _ in started]
        cpu0 = broker_cpu(cluster)
        svc0 = [cpu_seconds(pid) for pid in pids]
        t0 = time.perf_counter()
        await asyncio.gather(
            *(ws_client(ws, jobs // clients, accepted, done) for _ in range(clients))
        )
        elapsed = time.perf_counter() - t0
        cpu = broker_cpu(cluster) - cpu0
        server, worker = (cpu_seconds(pid) - c0 for pid, c0 in zip(pids, svc0, strict=True))
    finally:
        for proc, _ in started:
            assert proc.stdin is not None
            proc.stdin.close()
            await asyncio.wait_for(proc.wait(), 30)
        await delete_topology(urls[0], prefix, cfg)
    return {
        "jobs_s": len(done) / elapsed,
        "acc_p50": pct(accepted, 0.5),
        "acc_p99": pct(accepted, 0.99),
        "done_p50": pct(done, 0.5),
        "done_p99": pct(done, 0.99),
        "broker_ms": cpu / len(done) * 1000,
        "server_ms": server / len(done) * 1000,
        "worker_ms": worker / len(done) * 1000,
    }


async def delete_topology(url: str, prefix: str, cfg: Config) -> None:
    topo = Topology.model_validate(topology(prefix, cfg))
    conn = await aio_pika.connect(url, timeout=5)
    async with conn:
        channel = await conn.channel()
        for queue in (*topo.job_queues(), topo.dlq_queue):
            await channel.queue_delete(queue, timeout=10)
        for exchange in (topo.job_exchange, topo.events_exchange, topo.control_exchange):
            await channel.exchange_delete(exchange, timeout=10)


async def run_raw(
    cluster: RabbitCluster, queue_type: str, count: int, producers: int
) -> dict[str, float]:
    """Publish persistent with confirms to ffp1 → consume with ack on ffp2, closed loop per
    producer: the broker's own cost of the queue type."""
    name = f"ffbench.raw.{queue_type}.{uuid.uuid4().hex[:8]}"
    urls = cluster.amqp_urls()
    pub_conn = await aio_pika.connect(urls[0], timeout=5)
    con_conn = await aio_pika.connect(urls[1], timeout=5)
    waiting: dict[str, asyncio.Future[None]] = {}
    confirms: list[float] = []
    done: list[float] = []
    try:
        pub = await pub_conn.channel(publisher_confirms=True)
        queue = await pub.declare_queue(
            name, durable=True, arguments={"x-queue-type": queue_type}, timeout=10
        )
        con = await con_conn.channel()
        await con.set_qos(prefetch_count=SLOTS)

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            await message.ack()
            fut = waiting.pop(message.message_id or "", None)
            if fut is not None and not fut.done():
                fut.set_result(None)

        consumed = await con.get_queue(name)
        tag = await consumed.consume(on_message)

        async def producer(n: int) -> None:
            for _ in range(n):
                mid = uuid.uuid4().hex
                fut = waiting[mid] = asyncio.get_running_loop().create_future()
                t0 = time.perf_counter()
                message = aio_pika.Message(b"{}", message_id=mid, delivery_mode=2)
                await pub.default_exchange.publish(message, routing_key=name, timeout=10)
                confirms.append(time.perf_counter() - t0)
                await asyncio.wait_for(fut, 10)
                done.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        await asyncio.gather(*(producer(count // producers) for _ in range(producers)))
        elapsed = time.perf_counter() - t0
        await consumed.cancel(tag, timeout=10)
        await queue.delete(if_unused=False, if_empty=False, timeout=10)
    finally:
        await pub_conn.close()
        await con_conn.close()
    return {
        "jobs_s": len(done) / elapsed,
        "acc_p50": pct(confirms, 0.5),
        "acc_p99": pct(confirms, 0.99),
        "done_p50": pct(done, 0.5),
        "done_p99": pct(done, 0.99),
    }


ROWS = (
    ("jobs/s end to end", "jobs_s", "{:.0f}"),
    ("submit→accepted p50 (ms)", "acc_p50", "{:.1f}"),
    ("submit→accepted p99 (ms)", "acc_p99", "{:.1f}"),
    ("submit→completed p50 (ms)", "done_p50", "{:.1f}"),
    ("submit→completed p99 (ms)", "done_p99", "{:.1f}"),
    ("broker CPU per job (ms, 3 nodes)", "broker_ms", "{:.2f}"),
    ("server CPU per job (ms)", "server_ms", "{:.2f}"),
    ("worker CPU per job (ms)", "worker_ms", "{:.2f}"),
)


def medians(results: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(r[key] for r in results) for key in results[0]}


def table(names: list[str], figures: list[dict[str, float]]) -> list[str]:
    width = max(18, *(len(n) + 2 for n in names))
    lines = [f"{'':34}" + "".join(f"{n:>{width}}" for n in names)]
    for label, key, fmt in ROWS:
        if key in figures[0]:
            cells = "".join(f"{fmt.format(f[key]):>{width}}" for f in figures)
            lines.append(f"{label:34}" + cells)
    return lines


def ratios(base: dict[str, float], other: dict[str, float], name: str) -> str:
    return (
        f"{name} / classic: jobs/s {other['jobs_s'] / base['jobs_s']:.2f}x, "
        f"accepted p50 {other['acc_p50'] / base['acc_p50']:.2f}x, "
        f"accepted p99 {other['acc_p99'] / base['acc_p99']:.2f}x"
    )


async def measure(cluster: RabbitCluster, args: argparse.Namespace) -> None:
    runs: dict[str, list[dict[str, float]]] = {cfg.name: [] for cfg in CONFIGS}
    raw: dict[str, list[dict[str, float]]] = {"classic": [], "quorum": []}
    for n in range(args.rounds):
        for cfg in CONFIGS:  # in turn, so a busy moment of the machine hits all alike
            res = await run_service(cluster, cfg, args.jobs, args.clients)
            runs[cfg.name].append(res)
            print(
                f"round {n + 1}  {cfg.name:<16} {res['jobs_s']:6.0f} jobs/s  accepted p50 "
                f"{res['acc_p50']:5.1f} ms  p99 {res['acc_p99']:6.1f} ms",
                flush=True,
            )
        for queue_type in raw:
            raw[queue_type].append(await run_raw(cluster, queue_type, args.jobs, args.clients))
    svc = {name: medians(results) for name, results in runs.items()}
    base = svc[CONFIGS[0].name]
    print(
        f"\n{args.jobs} probe jobs (no-op FFmpeg) from {args.clients} clients, server on ffp1, "
        f"worker ({SLOTS} slots) on ffp2; medians of {args.rounds} rounds"
    )
    print("\n".join(table(list(svc), list(svc.values()))))
    for name, figures in list(svc.items())[1:]:
        print(ratios(base, figures, name))
    raw_med = {f"raw {k}": medians(v) for k, v in raw.items()}
    print("\nraw aio-pika, confirm to ffp1 → consume/ack on ffp2 (accepted = the confirm):")
    print("\n".join(table(list(raw_med), list(raw_med.values()))))
    print(ratios(raw_med["raw classic"], raw_med["raw quorum"], "raw quorum"))


async def main(args: argparse.Namespace) -> None:
    cluster = RabbitCluster(default_dir())
    found_running = cluster.running()
    if not found_running:
        cluster.stop(purge=True)  # stale data of an earlier cluster, as the tests' fixture
    seconds = cluster.start()
    print(f"cluster {'found running' if found_running else 'started'} in {seconds:.1f} s")
    try:
        await measure(cluster, args)
    finally:
        if not found_running:
            cluster.stop(purge=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--serve", metavar="PREFIX", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--role", default="server", help=argparse.SUPPRESS)
    parser.add_argument("--config", type=int, default=0, help=argparse.SUPPRESS)
    ns = parser.parse_args()
    if ns.serve:
        asyncio.run(serve(ns.serve, ns.url, ns.role, CONFIGS[ns.config]))
    else:
        asyncio.run(main(ns))
