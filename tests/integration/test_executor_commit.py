"""Twin runs of one job: one at a time, each in its own scratch space, first commit wins, and
nothing a run does when it fails or is cancelled touches committed outputs."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ffpool.domain.events import CompletedEvent, OutputFile, ProgressEvent
from ffpool.domain.jobs import Preset, TranscodeOp
from ffpool.ffmpeg import commit
from tests.integration.test_executor import ffprobe, job_files, job_for, make_executor

pytestmark = pytest.mark.ffmpeg


async def test_twin_runs_one_at_a_time_and_the_second_reports_the_first(
    media_root: Path, ffprobe_bin: str
) -> None:
    executor = make_executor(media_root)
    job = job_for(TranscodeOp(preset=Preset.ULTRAFAST, height=120))
    first_progress: list[ProgressEvent] = []
    second_progress: list[ProgressEvent] = []
    first = asyncio.create_task(executor.execute(job, first_progress.append))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(executor.execute(job, second_progress.append))
    a, b = await asyncio.gather(first, second)
    assert isinstance(a, CompletedEvent), a
    assert a == b  # the second copy reports the committed outcome: same outputs and times
    assert first_progress
    assert not second_progress
    assert job_files(media_root, job.id) == ["output.mp4"]
    info = ffprobe(ffprobe_bin, media_root / "jobs" / job.id / "output.mp4")
    assert float(info["format"]["duration"]) > 0


async def test_a_cancelled_copy_never_touches_committed_outputs(media_root: Path) -> None:
    executor = make_executor(media_root)
    job = job_for(TranscodeOp(preset=Preset.ULTRAFAST, height=120))
    done = await executor.execute(job, lambda _: None)
    assert isinstance(done, CompletedEvent), done
    output = media_root / "jobs" / job.id / "output.mp4"
    size = output.stat().st_size
    # A copy that is cancelled while it waits for, or holds, the run lock.
    copy = asyncio.create_task(executor.execute(job, lambda _: None))
    await asyncio.sleep(0.01)
    copy.cancel()
    await asyncio.gather(copy, return_exceptions=True)
    assert output.stat().st_size == size
    assert job_files(media_root, job.id) == ["output.mp4"]


def _event(job_id: str, size: int) -> CompletedEvent:
    out = OutputFile(
        name="out.bin",
        size=size,
        content_type="application/octet-stream",
        url=f"/jobs/{job_id}/outputs/out.bin",
    )
    return CompletedEvent(job_id=job_id, outputs=(out,), processing_time_s=1.0)


def test_first_commit_wins_even_without_the_lock(tmp_path: Path) -> None:
    job_id = "a" * 32
    job_dir = tmp_path / job_id
    job_dir.mkdir()
    one = commit.RunScope(job_dir, job_dir / ".run-1")
    two = commit.RunScope(job_dir, job_dir / ".run-2")
    for scope, data in ((one, b"first"), (two, b"second!")):
        scope.scratch.mkdir()
        (scope.scratch / "out.bin").write_bytes(data)
    first = _event(job_id, 5)
    won = one.commit(["out.bin"], first)
    lost = two.commit(["out.bin"], _event(job_id, 7))
    assert won == lost == first
    assert (job_dir / "out.bin").read_bytes() == b"first"
    two.discard()
    assert (job_dir / "out.bin").read_bytes() == b"first"
    assert not two.scratch.exists()


def test_stale_scratch_names() -> None:
    names = [".run-aa", ".run-bb", "output.mp4", ".ffpool-run.lock", ".ffpool-completed.json"]
    assert commit.stale_scratch(names, ".run-bb") == [".run-aa"]


HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(600)
"""


async def test_the_lock_of_a_killed_run_is_released(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / commit.LOCK)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        waiting = asyncio.create_task(_scope_entered(tmp_path))
        await asyncio.sleep(0.5)
        assert not waiting.done(), "a second run must wait for the lock"
        holder.kill()  # SIGKILL: no clean-up runs; the kernel drops the lock
        started = time.monotonic()
        await asyncio.wait_for(waiting, 5)
        assert time.monotonic() - started < 2
    finally:
        holder.kill()
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()


async def _scope_entered(job_dir: Path) -> None:
    async with commit.run_scope(job_dir) as scope:
        assert scope.scratch.is_dir()
