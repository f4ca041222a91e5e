"""Measuring helpers of the dispatch benchmarks (bench/dispatch.py, bench/quorum.py): service
processes, CPU time from /proc, latency figures, and the raw aio-pika baseline."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
import uuid
from pathlib import Path

import aio_pika

from tests.integration.rabbit_harness import AMQP_URL

JOB = {"input": {"kind": "path", "path": "clips/none.mp4"}, "operation": {"op": "probe"}}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


async def start_process(
    module: str, args: list[str], role: str, log: Path | None = None, timeout: float = 30
) -> tuple[asyncio.subprocess.Process, int]:
    """`python -m module args` until it prints `READY <port>`; its stderr goes to `log` if
    given (shown if it fails), else to ours."""
    with log.open("wb") if log else contextlib.nullcontext() as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            module,
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
        )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), timeout)).decode()
    if not line.startswith("READY"):
        shown = log.read_text()[-3000:] if log else ""
        raise SystemExit(f"{module} {role} did not start:\n{shown}")
    return proc, int(line.split()[1])


async def stop(started: list[tuple[asyncio.subprocess.Process, int]]) -> None:
    """Close each service process's stdin (its signal to stop) and wait for it."""
    for proc, _ in started:
        assert proc.stdin is not None
        proc.stdin.close()
        await asyncio.wait_for(proc.wait(), 30)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def broker_pid() -> int | None:
    """The local RabbitMQ node's Erlang VM, to show how much CPU the broker spends."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "beam.smp":
                    return int(entry.name)
            except OSError:
                continue
    return None


def cpu_snapshot(pids: dict[str, int | None]) -> dict[str, float]:
    return {name: cpu_seconds(pid) for name, pid in pids.items() if pid is not None}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def figures(accepted: list[float], done: list[float], elapsed: float) -> dict[str, float]:
    """Throughput and latency percentiles (ms) of one timed phase."""
    return {
        "jobs_s": len(done) / elapsed,
        "acc_p50": pct(accepted, 0.5),
        "acc_p99": pct(accepted, 0.99),
        "done_p50": pct(done, 0.5),
        "done_p99": pct(done, 0.99),
    }


async def run_raw(
    jobs: int,
    clients: int,
    prefetch: int,
    urls: tuple[str, str] = (AMQP_URL, AMQP_URL),
    queue_type: str = "classic",
    pids: dict[str, int | None] | None = None,
) -> dict[str, float]:
    """Baseline: publish persistent with confirms to urls[0] → consume with ack on urls[1],
    closed loop per client (accepted = the confirm); CPU of `pids` (default: this process and
    the local broker)."""
    name = f"ffbench.raw.{queue_type}.{uuid.uuid4().hex[:8]}"
    pids = {"bench": os.getpid(), "broker": broker_pid()} if pids is None else pids
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
        await con.set_qos(prefetch_count=prefetch)

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            await message.ack()
            fut = waiting.pop(message.message_id or "", None)
            if fut is not None and not fut.done():
                fut.set_result(None)

        consumed = await con.get_queue(name)
        tag = await consumed.consume(on_message)

        async def producer(count: int) -> None:
            for _ in range(count):
                mid = uuid.uuid4().hex
                fut = waiting[mid] = asyncio.get_running_loop().create_future()
                t0 = time.perf_counter()
                body = json.dumps({"id": mid, "spec": JOB}).encode()
                message = aio_pika.Message(body, message_id=mid, delivery_mode=2)
                await pub.default_exchange.publish(message, routing_key=name, timeout=10)
                confirms.append(time.perf_counter() - t0)
                await asyncio.wait_for(fut, 10)
                done.append(time.perf_counter() - t0)

        cpu0 = cpu_snapshot(pids)
        t0 = time.perf_counter()
        await asyncio.gather(*(producer(jobs // clients) for _ in range(clients)))
        elapsed = time.perf_counter() - t0
        cpu = {k: v - cpu0[k] for k, v in cpu_snapshot(pids).items()}
        await consumed.cancel(tag, timeout=10)
        await queue.delete(if_unused=False, if_empty=False, timeout=10)
    finally:
        await pub_conn.close()
        await con_conn.close()
    return {**{f"cpu_{k}": v / elapsed for k, v in cpu.items()}, **figures(confirms, done, elapsed)}
