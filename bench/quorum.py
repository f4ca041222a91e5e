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
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.dispatch import drive, serve
from bench.measure import run_raw, start_process, stop
from tests.integration.rabbit_harness import delete_topology, topology_env
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


def knobs(cfg: Config) -> dict[str, Any]:
    return {"queue_type": cfg.queue_type, "queue_priority_bands": cfg.bands}


def service_env(prefix: str, cfg: Config) -> dict[str, Any]:
    """What a service process sets beyond bench/dispatch.py's settings: the configuration's
    topology, and a job timeout under the broker's consumer timeout (no warning printed)."""
    return {**topology_env(prefix, **knobs(cfg)), "job_timeout_seconds": 600}


LOGS = Path(tempfile.gettempdir()) / "ffpool-bench-quorum"


async def spawn(
    prefix: str, url: str, role: str, cfg: Config
) -> tuple[asyncio.subprocess.Process, int]:
    """A service process; its stderr goes to LOGS/<prefix>.<role>.log (shown if it fails)."""
    LOGS.mkdir(exist_ok=True)
    args = ["--serve", prefix, "--url", url, "--role", role, "--config", str(CONFIGS.index(cfg))]
    log = LOGS / f"{prefix}.{role}.log"
    return await start_process("bench.quorum", args, f"{role} ({cfg.name})", log, timeout=60)


async def run_service(
    cluster: RabbitCluster, cfg: Config, jobs: int, clients: int
) -> dict[str, float]:
    prefix = f"ffbench.q.{uuid.uuid4().hex[:8]}"
    urls = cluster.amqp_urls()
    started = [await spawn(prefix, urls[0], "server", cfg)]
    started.append(await spawn(prefix, urls[1], "worker", cfg))
    try:
        ws = f"ws://127.0.0.1:{started[0][1]}/ws"
        nodes = {node.name: cluster.pid_of(node.name) for node in cluster.nodes}
        pids = {**nodes, "server": started[0][0].pid, "worker": started[1][0].pid}
        res, cpu = await drive(ws, jobs, clients, pids, warmup=2, interval=0.0)
    finally:
        await stop(started)
        await delete_topology(prefix, urls[0], **knobs(cfg))
    # `drive` gives CPU seconds per second; per job = that / jobs per second.
    per_job = {k: v / res["jobs_s"] * 1000 for k, v in cpu.items()}
    return {
        **res,
        "broker_ms": sum(per_job.get(name, 0.0) for name in nodes),
        "server_ms": per_job["server"],
        "worker_ms": per_job["worker"],
    }


async def run_raw_quorum(
    cluster: RabbitCluster, queue_type: str, count: int, producers: int
) -> dict[str, float]:
    """bench/dispatch.py's raw baseline across nodes: publish with confirms to ffp1 → consume
    with ack on ffp2, closed loop per producer: the broker's own cost of the queue type."""
    urls = cluster.amqp_urls()
    pair = (urls[0], urls[1])
    return await run_raw(count, producers, SLOTS, pair, queue_type, pids={})


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
            raw[queue_type].append(
                await run_raw_quorum(cluster, queue_type, args.jobs, args.clients)
            )
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
        env = service_env(ns.serve, CONFIGS[ns.config])
        asyncio.run(serve(ns.serve, SLOTS, ns.role, ns.url, env))
    else:
        asyncio.run(main(ns))
