"""`ffpool submit`, `watch` and `cancel` as a script would use them: a subprocess against the
real service (memory backend, real FFmpeg, ephemeral ports), judged by exit code and output."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from ffpool.cli.errors import ExitCode
from ffpool.domain.events import JobState
from tests.conftest import make_clip
from tests.integration.cli_user import (
    cli_env,
    cuttable,
    ffpool_command,
    job_state,
    run_cli,
    server_flags,
    until_finished,
)
from tests.integration.service import service

pytestmark = pytest.mark.ffmpeg

UNKNOWN_JOB = "f" * 32
# A transcode that runs for seconds (a 10 s clip, one thread, the slowest preset): still
# running when the test acts on it.
SLOW_JOB = ("transcode", "--path", "clips/long.mp4", "--preset", "veryslow")


@pytest.fixture
def long_media(media_root: Path, ffmpeg_bin: str) -> Path:
    make_clip(ffmpeg_bin, media_root / "clips" / "long.mp4", seconds=10)
    return media_root


def clip_in(media_root: Path, cwd: Path) -> Path:
    """The sample clip in the user's working directory, as a user's own file."""
    cwd.mkdir(exist_ok=True)
    clip = cwd / "sample.mp4"
    clip.write_bytes((media_root / "clips" / "sample.mp4").read_bytes())
    return clip


async def test_submit_json_saves_beside_earlier_runs(media_root: Path, tmp_path: Path) -> None:
    clip = clip_in(media_root, tmp_path / "work")
    async with service(media_root) as svc:
        argv = ["submit", "thumbnail", "--file", str(clip), "--time", "1", "--json"]
        runs = [await run_cli(*argv, *server_flags(svc), cwd=clip.parent) for _ in range(2)]
    saved = []
    for run in runs:
        assert run.code == ExitCode.OK, run.err
        shown = json.loads(run.out)  # stdout is the outcome alone; progress went to stderr
        assert shown["type"] == "completed"
        saved.append(Path(shown["saved"][0]))
    assert [p.name for p in saved] == ["sample.thumbnail.jpg", "sample.thumbnail.1.jpg"]
    for path in saved:
        assert (clip.parent / path).read_bytes()[:2] == b"\xff\xd8"  # two JPEGs, none lost
    assert "saved" in runs[1].err
    assert "sample.thumbnail.1.jpg" in runs[1].err


async def test_o_is_exact_and_overwrites(media_root: Path, tmp_path: Path) -> None:
    clip = clip_in(media_root, tmp_path / "work")
    async with service(media_root) as svc:
        argv = ["submit", "thumbnail", "--file", str(clip), "-o", "shots/first.png"]
        for fmt in ("jpg", "png"):  # the name is the user's, whatever the format
            run = await run_cli(*argv, "--format", fmt, *server_flags(svc), cwd=clip.parent)
            assert run.code == ExitCode.OK, run.err
    assert [p.name for p in (clip.parent / "shots").iterdir()] == ["first.png"]
    assert (clip.parent / "shots" / "first.png").read_bytes()[:4] == b"\x89PNG"


async def test_several_outputs_go_to_a_directory(media_root: Path, tmp_path: Path) -> None:
    clip = clip_in(media_root, tmp_path / "work")
    argv = ["submit", "ladder", "--file", str(clip), "--renditions", "120:200", "--json"]
    async with service(media_root) as svc:
        for _ in range(2):
            run = await run_cli(*argv, *server_flags(svc), cwd=clip.parent)
            assert run.code == ExitCode.OK, run.err
    for folder in ("sample.ladder", "sample.ladder.1"):
        assert (clip.parent / folder / "master.m3u8").is_file(), run.err


async def test_detach_then_watch_and_cancel_a_finished_job(
    media_root: Path, tmp_path: Path
) -> None:
    async with service(media_root) as svc:
        flags = server_flags(svc)
        argv = ["submit", "thumbnail", "--path", "clips/sample.mp4", "--detach"]
        run = await run_cli(*argv, *flags, cwd=tmp_path)
        assert run.code == ExitCode.OK, run.err
        job_id = run.out.strip()
        assert len(job_id) == 32, run.out
        assert await until_finished(svc, job_id, timeout=60) is JobState.COMPLETED

        watched = await run_cli("watch", job_id, "--json", "--download", *flags, cwd=tmp_path)
        assert watched.code == ExitCode.OK, watched.err
        assert json.loads(watched.out)["type"] == "completed"
        assert (tmp_path / f"{job_id[:8]}.thumbnail.jpg").is_file()

        events = await run_cli("watch", job_id, "--json", "--events", *flags, cwd=tmp_path)
        assert events.code == ExitCode.OK, events.err
        kinds = [json.loads(line)["type"] for line in events.out.splitlines()]
        assert kinds == ["state", "completed"]

        cancel = await run_cli("cancel", job_id, *flags, cwd=tmp_path)
        assert cancel.code == ExitCode.OK, cancel.err
        assert "already finished" in cancel.err
        assert "Traceback" not in cancel.err


async def test_cancel_a_running_job(long_media: Path, tmp_path: Path) -> None:
    async with service(long_media, ffmpeg_threads=1) as svc:
        flags = server_flags(svc)
        run = await run_cli("submit", *SLOW_JOB, "--detach", *flags, cwd=tmp_path)
        job_id = run.out.strip()
        cancel = await run_cli("cancel", job_id, "--json", *flags, cwd=tmp_path)
        assert cancel.code == ExitCode.OK, cancel.err
        assert json.loads(cancel.out)["type"] == "cancelled"
        assert await job_state(svc, job_id) is JobState.CANCELLED
        watched = await run_cli("watch", job_id, *flags, cwd=tmp_path)
    assert watched.code == ExitCode.JOB_FAILED  # a cancelled job's outcome
    assert "cancelled" in watched.err


@pytest.mark.parametrize("verb", ["watch", "cancel"])
async def test_unknown_job_is_one_line(verb: str, media_root: Path, tmp_path: Path) -> None:
    async with service(media_root) as svc:
        run = await run_cli(verb, UNKNOWN_JOB, *server_flags(svc), cwd=tmp_path)
    assert run.code == ExitCode.NOT_FOUND, run.err
    assert len(run.err.strip().splitlines()) == 1, run.err
    assert "Traceback" not in run.err
    assert run.out == ""


async def test_watch_rides_out_a_dropped_connection(long_media: Path, tmp_path: Path) -> None:
    media_root = long_media
    async with service(media_root, ffmpeg_threads=1) as svc:
        assert svc.ws_port is not None
        async with cuttable(svc.ws_port) as proxy:
            submitted = await run_cli(
                "submit", *SLOW_JOB, "--detach", *server_flags(svc), cwd=tmp_path
            )
            job_id = submitted.out
            watch = await asyncio.create_subprocess_exec(
                ffpool_command(),
                *("watch", job_id.strip(), "--json", "--events"),
                *("--server", f"ws://127.0.0.1:{proxy.port}/ws", "--http", svc.http_url),
                cwd=tmp_path,
                env=cli_env(tmp_path),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            assert watch.stdout is not None
            first = await asyncio.wait_for(watch.stdout.readline(), 30)
            assert json.loads(first)["state"] in ("queued", "running"), first
            proxy.cut()  # the job runs on; the watch must reconnect and subscribe again
            rest, err = await asyncio.wait_for(watch.communicate(), 90)
    assert watch.returncode == ExitCode.OK, err.decode()
    events = [json.loads(line) for line in (first + rest).decode().splitlines()]
    assert events[0]["type"] == "state"
    assert events[-1]["type"] == "completed"
    assert proxy.accepted >= 2, (events, err.decode())  # it came back
