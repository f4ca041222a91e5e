"""Closed-loop autoscaling benchmark: the real operator against KMock and the real
broker, a ReplicaSet stand-in running real `ffpool worker` processes (bench/pods.py), and a
burst of real FFmpeg transcodes; then the same burst and harness driven by a KEDA + HPA policy
with KEDA's defaults (bench/keda.py) instead of the operator.

    .venv/bin/python -m bench.autoscale [--quick] [--jobs 24] [--keda-targets 1,20]
    .venv/bin/python -m bench.autoscale --jobs 12 --long-jobs 2 --window 10 --keda-targets ''
    (the second: a scale-down while long jobs still run, to exercise busy-aware victims)
    .venv/bin/python -m bench.autoscale --cluster [...]

`--cluster` runs the same scenario on a real control plane and node (bench/realcluster.py):
the workers are containers of the service image that the real ReplicaSet controller creates and
deletes (choosing victims by the pod-deletion-cost our operator sets; newest first in the KEDA
runs, which set none), watched by bench/kubepods.py instead of run by the stand-in.

Defaults: up to 4 workers of 1 job each, FFMPEG_THREADS=1 (2-core machine), DRAIN_SECONDS=0 so
a SIGTERM'd busy worker hands its job back at once (stands for jobs longer than the grace
period; with a long drain a short job would just finish and no interruption would show). Ours
polls every 5 s with the spec's default 60 s scale-down window; KEDA runs with target = jobs per
worker (same parallelism, so drain times compare) and with its default 20 messages per replica.
KEDA's loops see the burst half-way through their intervals (--keda-phase 0.5: the mean case).

What is measured and what is computed:
- t=0 is the start of the burst (all jobs are published within a few ms).
- first scale-up / full scale: when the ReplicaSet stand-in (or the pod watcher; both poll
  every 0.2 s) first saw the Deployment's replicas rise / reach its peak.
- drain: the last job's `completed`/`failed` event.
- worker-seconds: the sum of worker process lifetimes (spawn to exit; with --cluster, pod seen
  to container terminated, start-up included). Ours: measured until the
  replicas are back at min and every worker has exited. KEDA: measured until the drain; the idle
  tail after it is computed by stepping the same policy forward (metric 0: the queue is empty)
  until zero replicas, replicas x time, instead of waiting ~10 minutes for it.
- interrupted: jobs started more than once or handed back after starting (bench/ledger.py);
  in KEDA's computed tail no job runs, so none can be interrupted there.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import SecretStr

from bench import keda, realcluster, report
from bench.burst import transcode_jobs
from bench.keda_loop import KedaDriver
from bench.replicaset import worker_seconds
from bench.stage import Scenario, Stage, StageFactory, stage
from ffpool import logs
from ffpool_operator.broker.amqp_depth import AmqpReadyProbe
from ffpool_operator.spec.pool import AutoscalingSpec
from tests.operator_harness.helpers import AMQP_URL

DRAIN_DEADLINE_SECONDS = 240.0
DEFAULT_WINDOW = float(AutoscalingSpec().scale_down_stabilization_seconds)  # the spec default


@dataclass
class Measured:
    t0: float
    drain_at: float
    stage: Stage


async def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        await asyncio.sleep(0.1)


async def burst_and_drain(st: Stage, sc: Scenario) -> Measured:
    jobs = transcode_jobs(sc.jobs, sc.long_jobs)
    t0 = await st.submitter.burst(jobs)
    ledger = st.submitter.ledger
    await wait_until(lambda: ledger.done, DRAIN_DEADLINE_SECONDS, "drain")
    return Measured(t0, ledger.last_finished or time.monotonic(), st)


def _result(name: str, m: Measured, end: float, tail: float, how: str) -> report.Result:
    crashes = m.stage.rs.crash_reports()
    for worker, lines in crashes.items():  # the figures stand, but say why it was replaced
        print(f"[{name}] worker {worker} exited by itself:", *lines, sep="\n  ", file=sys.stderr)
    spans = m.stage.rs.spans()
    ledger = m.stage.submitter.ledger
    return report.Result.build(
        name=name,
        t0=m.t0,
        drain_at=m.drain_at,
        replica_log=m.stage.rs.replica_log,
        ws_drain=worker_seconds(spans, m.drain_at),
        ws_tail=tail,
        tail_how=how,
        end=end,
        interrupted=len(ledger.interrupted),
        failed=ledger.failed,
        finished=ledger.finished,
        crashed=len(crashes),
        victim_costs=tuple(cost for _, _, cost in m.stage.rs.removals),
    )


async def run_ours(sc: Scenario, world: StageFactory) -> report.Result:
    async with world(sc, operator=True) as st:
        m = await burst_and_drain(st, sc)
        window = st.spec.autoscaling.scale_down_stabilization_seconds
        at_min = st.spec.autoscaling.min_replicas

        def settled() -> bool:
            return st.rs.replica_log[-1][1] == at_min and st.rs.alive() == 0

        await wait_until(settled, window + 3 * sc.polling_seconds + 60, "back to min")
        spans = st.rs.spans()
        end = max((stop for _, stop in spans if stop is not None), default=time.monotonic())
        tail = worker_seconds(spans, end) - worker_seconds(spans, m.drain_at)
        return _result("ffpool operator", m, end, tail, "measured")


async def run_keda(
    sc: Scenario, world: StageFactory, kspec: keda.KedaSpec, phase: float, http: bool
) -> report.Result:
    async with world(sc, operator=False) as st:
        queue = st.spec.topology.job_queue
        probe = AmqpReadyProbe(SecretStr(AMQP_URL))

        async def metric() -> float | None:
            if http:  # management API `messages`: ready + unacked, lagging statistics
                info = await st.broker.api.queue("/", queue)
                return None if info is None else info.stats().backlog
            counts = await probe.counts(queue)  # passive queue.declare: ready only
            return None if counts is None else counts[0]

        driver = KedaDriver(kspec, metric, st.kube, st.pool.namespace, "pool-worker")
        now = time.monotonic()  # the burst lands `phase` of the way through each interval
        driver.start_schedule(now + (1 - phase) * kspec.polling_s, now + (1 - phase) * kspec.sync_s)
        stop = asyncio.Event()
        task = asyncio.create_task(driver.run(stop))
        try:
            m = await burst_and_drain(st, sc)
        finally:
            stop.set()
            await asyncio.wait({task}, timeout=10)
            await probe.close()
        steps = keda.project(kspec, driver.state, m.drain_at, driver.next_poll, driver.next_sync)
        mode = "http" if http else "amqp"
        name = f"KEDA {mode} target={kspec.target:g}"
        return _result(name, m, steps[-1][0], keda.area(steps), "computed")


def scenario(args: argparse.Namespace) -> Scenario:
    return Scenario(
        jobs=args.jobs,
        clip_seconds=args.clip_seconds,
        clip_size=args.clip_size,
        max_workers=args.max_workers,
        jobs_per_worker=args.jobs_per_worker,
        drain_seconds=args.drain_seconds,
        polling_seconds=args.polling,
        window_seconds=args.window,
        long_jobs=args.long_jobs,
    )


async def main(args: argparse.Namespace, world: StageFactory) -> None:
    logs.configure("WARNING")
    # Shutdown chatter, not results: the server backend deletes the queues it consumes from
    # (one "consumer cancelled by the broker" line each); kopf off the main thread.
    for noisy in ("aiormq", "aio_pika", "kopf"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    sc = scenario(args)
    results = [await run_ours(sc, world)]
    print(report.one_line(results[-1]), flush=True)
    for target in args.keda_targets:
        kspec = keda.KedaSpec(target=target, max_replicas=sc.max_workers)
        results.append(await run_keda(sc, world, kspec, args.keda_phase, args.keda_http))
        print(report.one_line(results[-1]), flush=True)
    where = "real cluster" if args.cluster else "KMock + ReplicaSet stand-in"
    print(f"world: {where}\n{report.table(sc, results)}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="8 jobs, matched KEDA target only")
    p.add_argument(
        "--cluster",
        action="store_true",
        help="on a real control plane and node (bench/realcluster.py) instead of KMock",
    )
    p.add_argument("--jobs", type=int, default=24)
    p.add_argument("--clip-seconds", type=float, default=8.0)
    p.add_argument("--clip-size", default="640x360")
    p.add_argument("--max-workers", type=int, default=4)
    p.add_argument("--jobs-per-worker", type=int, default=1)
    p.add_argument("--drain-seconds", type=int, default=0, help="worker DRAIN_SECONDS")
    p.add_argument("--polling", type=float, default=5.0, help="our polling interval (s)")
    p.add_argument("--window", type=float, default=DEFAULT_WINDOW, help="our scale-down window")
    p.add_argument(
        "--keda-targets",
        type=lambda s: [float(x) for x in s.split(",") if x],
        default=None,
        help="KEDA messages per replica, comma-separated, '' for none (default: jobs/worker,20)",
    )
    p.add_argument("--long-jobs", type=int, default=0, help="make the last N jobs 8x longer")
    p.add_argument("--keda-phase", type=float, default=0.5, help="burst phase in KEDA's loops")
    p.add_argument("--keda-http", action="store_true", help="KEDA http protocol (ready+unacked)")
    args = p.parse_args(argv)
    if args.quick:
        args.jobs, args.clip_seconds = 8, 4.0
    if args.keda_targets is None:
        matched = float(args.jobs_per_worker)
        args.keda_targets = [matched] if args.quick else [matched, 20.0]
    return args


def cli() -> None:
    args = parse_args()
    if not args.cluster:
        asyncio.run(main(args, stage))
        return
    with realcluster.world(scenario(args)) as world:
        asyncio.run(main(args, world.stage))


if __name__ == "__main__":
    try:
        cli()
    except KeyboardInterrupt:  # the runs' exit stacks have stopped the workers and cleaned up
        sys.exit("interrupted: workers stopped, queues deleted")
