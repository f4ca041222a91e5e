"""Chunked encoding: the same 1080p transcode by one worker versus split across 2 and 4.

Separate `ffpool server` and `ffpool worker` processes on the local RabbitMQ broker, each
worker with one job slot and FFmpeg limited to one thread (FFMPEG_THREADS=1), so the
machine's cores are what more workers add. Per round, in turn: (a) one worker, one pass (no
chunking), (b) two workers, chunked, (c) four workers, chunked; each timed from `submit` to
`completed` at the client, workers already up. The cut and join times are read from the
parent worker's log (chunks/coordinator.py logs them), so the overhead of splitting is
reported apart from the encode.

    .venv/bin/python -m bench.chunked [--seconds 60] [--chunk-seconds 6] [--rounds 2]
                                      [--preset veryfast]

Goal (issue: README, "Chunked encoding"): two workers on two cores ≥ 1.7x one worker.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from tests.integration.rabbit_harness import AMQP_URL, delete_topology
from tests.integration.rabbit_procs import Proc, client, procs, service_env

CUT = re.compile(r"chunked job split.*cut_seconds=([0-9.]+)")
JOIN = re.compile(r"chunked job joined.*join_seconds=([0-9.]+)")


def make_input(path: Path, seconds: int) -> None:
    """1080p test pattern with a tone, H.264 with a keyframe every 2 s (a camera's or an
    encoder's usual GOP), encoded fast: the input, not the thing measured."""
    subprocess.run(
        [
            "ffmpeg",
            *("-hide_banner", "-loglevel", "error", "-y"),
            *("-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate=25:duration={seconds}"),
            *("-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}"),
            *("-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-pix_fmt", "yuv420p"),
            *("-c:a", "aac", "-shortest", str(path)),
        ],
        check=True,
        timeout=600,
    )


def job(preset: str, chunk_seconds: float | None) -> dict[str, Any]:
    operation: dict[str, Any] = {"op": "transcode", "preset": preset}
    if chunk_seconds is not None:
        operation["chunking"] = {"chunk_seconds": chunk_seconds}
    return {"input": {"kind": "path", "path": "clips/input.mp4"}, "operation": operation}


def logged(workers: list[Proc], pattern: re.Pattern[str]) -> float | None:
    for proc in workers:
        for line in proc.lines:
            if found := pattern.search(line):
                return float(found.group(1))
    return None


async def one_run(
    root: Path, workers: int, spec: dict[str, Any]
) -> tuple[float, float | None, float | None]:
    """(seconds from submit to completed, cut seconds, join seconds)."""
    prefix = f"ffbench.{uuid.uuid4().hex[:8]}"

    def env(name: str) -> dict[str, str]:
        return service_env(
            prefix,
            root,
            name,
            AMQP_URL,
            max_concurrent_jobs=1,
            ffmpeg_threads=1,
            log_level="INFO",
            job_timeout_seconds=3600,
        )

    specs = [("server", env("bench-server"))]
    specs += [("worker", env(f"bench-worker-{i}")) for i in range(workers)]
    try:
        async with procs(*specs) as started, client(started[0]) as cl:
            began = time.perf_counter()
            job_id = await cl.submit(spec)
            events = await cl.until(job_id, {"completed", "failed", "cancelled"}, timeout=3600)
            elapsed = time.perf_counter() - began
            if events[-1].type != "completed":
                raise SystemExit(f"the job did not complete: {events[-1]}")
            return elapsed, logged(started[1:], CUT), logged(started[1:], JOIN)
    finally:
        await delete_topology(prefix)


async def main(seconds: int, chunk_seconds: float, rounds: int, preset: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "media"
        (root / "clips").mkdir(parents=True)
        make_input(root / "clips" / "input.mp4", seconds)
        configs = [
            ("1 worker, one pass", 1, job(preset, None)),
            ("2 workers, chunked", 2, job(preset, chunk_seconds)),
            ("4 workers, chunked", 4, job(preset, chunk_seconds)),
        ]
        times: dict[str, list[float]] = {name: [] for name, _, _ in configs}
        cuts: list[float] = []
        joins: list[float] = []
        print(f"input: 1920x1080 25 fps, {seconds} s, H.264 GOP 2 s; x264 {preset}, 1 thread")
        print(f"chunks of about {chunk_seconds:g} s; {rounds} rounds, configurations in turn")
        for index in range(rounds):
            for name, workers, spec in configs:
                elapsed, cut, joined = await one_run(root, workers, spec)
                times[name].append(elapsed)
                cuts += [cut] if cut is not None else []
                joins += [joined] if joined is not None else []
                print(f"round {index + 1}  {name:<20} {elapsed:7.2f} s")
        base = statistics.median(times[configs[0][0]])
        print()
        for name, values in times.items():
            median = statistics.median(values)
            print(f"{name:<20} median {median:7.2f} s   speed-up {base / median:5.2f}x")
        if cuts and joins:
            print(
                f"overhead: cut median {statistics.median(cuts):.2f} s, "
                f"join median {statistics.median(joins):.2f} s"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--chunk-seconds", type=float, default=6.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--preset", default="veryfast")
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.chunk_seconds, args.rounds, args.preset))
