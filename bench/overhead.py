"""Service overhead versus bare FFmpeg, measured side by side in one run.

For each case the same operation runs as a bare `ffmpeg` command and through the service
(WebSocket submit → `completed` at the client, memory backend), alternating, N rounds. Prints the
median wall times and their ratio. Goals: ≤ 1.05x for a 10-second 720p transcode, ≤ 1.15x for a
thumbnail.

    .venv/bin/python bench/overhead.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from ffpool.app import running
from ffpool.client.session import Client
from ffpool.domain.events import CompletedEvent
from ffpool.domain.jobs import JobSpec, Operation, PathInput, ThumbnailOp, TranscodeOp
from ffpool.ffmpeg.argv import build_plan
from ffpool.ffmpeg.binaries import resolve
from ffpool.settings import Settings

CASES: list[tuple[str, Operation]] = [
    ("transcode 10 s 720p -> 720p h264 veryfast", TranscodeOp(height=720, crf=23)),
    ("thumbnail at 5 s, 320 px", ThumbnailOp(time=5, width=320)),
]


def bare_argv(op: Operation, source: Path, out_dir: Path) -> list[str]:
    """Exactly the FFmpeg command the service runs, minus its progress reporting."""
    plan = build_plan(op, source, out_dir, resolve(Settings()), Settings())
    argv, skip = [], 0
    for arg in plan.argv:
        if skip:
            skip -= 1
        elif arg in ("-progress", "-stats_period"):
            skip = 1
        else:
            argv.append(arg)
    return argv


def make_source(ffmpeg: str, dest: Path) -> None:
    subprocess.run(
        [
            ffmpeg,
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1280x720:rate=30:duration=10",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=10",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
            str(dest),
        ],
        check=True,
    )


def bare(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


async def through_service(client: Client, op: Operation) -> float:
    started = time.perf_counter()
    accepted = await client.submit(JobSpec(input=PathInput(path="source.mp4"), operation=op))
    outcome = await client.wait(accepted.job_id)
    elapsed = time.perf_counter() - started
    assert isinstance(outcome, CompletedEvent), outcome
    return elapsed


async def main(rounds: int) -> None:
    ffmpeg = resolve(Settings()).ffmpeg  # the very binary the service will run
    with tempfile.TemporaryDirectory() as tmp:
        media = Path(tmp) / "media"
        media.mkdir()
        make_source(ffmpeg, media / "source.mp4")
        settings = Settings(
            host="127.0.0.1",
            ws_port=0,
            http_port=0,
            ops_port=0,
            media_root=media,
            max_concurrent_jobs=1,
        )
        async with running(settings) as svc, Client(svc.ws_url, svc.http_url) as client:
            print(f"{'case':40} {'bare s':>8} {'service s':>10} {'ratio':>7}")
            for name, op in CASES:
                argv = bare_argv(op, media / "source.mp4", Path(tmp))
                bare_t, svc_t = [], []
                await through_service(client, op)  # warm-up, not counted
                for _ in range(rounds):
                    bare_t.append(await asyncio.to_thread(bare, argv))
                    svc_t.append(await through_service(client, op))
                b, s = statistics.median(bare_t), statistics.median(svc_t)
                print(f"{name:40} {b:8.3f} {s:10.3f} {s / b:6.3f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    asyncio.run(main(parser.parse_args().rounds))
