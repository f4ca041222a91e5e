"""chunks/runner.py with real FFmpeg: a chunk sub-job fetches its cut video from the chunk
store, encodes it, stores the result; a rerun finds it done; failures end cleanly."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest

from ffpool.chunks import argv as chunk_argv
from ffpool.chunks.plan import ChunkPlan, Cut, input_name, output_name
from ffpool.chunks.runner import ChunkRunner
from ffpool.chunks.store import FileChunkStore, chunk_store
from ffpool.domain.events import CompletedEvent, FailedEvent, FailureCode, ProgressEvent
from ffpool.domain.jobs import (
    ChunkTask,
    Job,
    JobSpec,
    LadderOp,
    Operation,
    PathInput,
    Preset,
    Rendition,
    TranscodeOp,
    VideoCodec,
    chunk_job_id,
    new_job_id,
)
from ffpool.ffmpeg.binaries import Binaries
from ffpool.settings import Settings
from ffpool.storage.media import LocalStorage
from ffpool.storage.s3 import S3ObjectStore
from tests.conftest import make_clip
from tests.integration.s3_harness import S3Server
from tests.polling import eventually

pytest_plugins = ["tests.integration.s3_fixtures"]
pytestmark = pytest.mark.ffmpeg

CLIP_SECONDS = 4


@pytest.fixture(scope="module")
def chunk_file(ffmpeg_binaries: Binaries, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cut chunk as the coordinator stores it: the clip's video by stream copy, Matroska."""
    folder = tmp_path_factory.mktemp("chunk")
    clip = make_clip(ffmpeg_binaries.ffmpeg, folder / "clip.mp4", seconds=CLIP_SECONDS)
    plan = ChunkPlan(
        cuts=(Cut(index=0, start_s=0, duration_s=CLIP_SECONDS, packet=0),),
        duration_s=CLIP_SECONDS,
    )
    settings = Settings(_env_file=None, media_root=folder)
    argv = chunk_argv.cut_argv(ffmpeg_binaries, settings, clip, plan, folder)
    subprocess.run(argv, check=True, capture_output=True, timeout=120)
    return folder / input_name(0)


class Setup:
    def __init__(self, root: Path, binaries: Binaries) -> None:
        self.storage = LocalStorage(root)
        self.store = FileChunkStore(self.storage.root)
        self.settings = Settings(_env_file=None, media_root=root)
        self.binaries_calls = 0
        self._binaries = binaries
        self.runner = ChunkRunner(self.settings, self.provide, self.store)
        self.parent = new_job_id()
        self.events: list[ProgressEvent] = []

    def provide(self) -> Binaries:
        self.binaries_calls += 1
        return self._binaries

    def job(self, op: Operation, index: int = 0, count: int = 2) -> Job:
        chunk = ChunkTask(
            parent=self.parent, index=index, count=count, start_s=0.0, duration_s=CLIP_SECONDS
        )
        spec = JobSpec(input=PathInput(path="clips/x.mp4"), operation=op)
        return Job(id=chunk_job_id(self.parent, index), spec=spec, chunk=chunk)

    async def put_input(self, source: Path, index: int = 0) -> None:
        copy = self.storage.root / f"upload-{index}.mkv"
        copy.write_bytes(source.read_bytes())
        await self.store.put(self.parent, input_name(index), copy)

    def stored(self) -> list[str]:
        """Everything in the parent's chunk directory, workspaces included."""
        folder = self.storage.root / "chunks" / self.parent
        return sorted(p.name for p in folder.iterdir()) if folder.exists() else []

    async def run(self, job: Job) -> CompletedEvent | FailedEvent:
        return await self.runner.run(job, self.events.append)


@pytest.fixture
def setup(tmp_path: Path, ffmpeg_binaries: Binaries) -> Setup:
    return Setup(tmp_path / "media", ffmpeg_binaries)


def frames(binaries: Binaries, path: Path) -> tuple[int, int, int]:
    done = subprocess.run(
        [
            *(binaries.ffprobe, "-v", "error", "-count_packets", "-select_streams", "v:0"),
            *("-show_entries", "stream=width,height,nb_read_packets", "-of", "json", str(path)),
        ],
        capture_output=True,
        check=True,
        timeout=60,
    )
    stream = json.loads(done.stdout)["streams"][0]
    return stream["width"], stream["height"], int(stream["nb_read_packets"])


async def test_chunk_runs_and_stores_its_output(
    setup: Setup, chunk_file: Path, ffmpeg_binaries: Binaries
) -> None:
    await setup.put_input(chunk_file, index=1)
    job = setup.job(TranscodeOp(height=120), index=1)
    event = await setup.run(job)
    assert isinstance(event, CompletedEvent), event
    assert event.job_id == job.id
    assert event.outputs == ()
    assert setup.stored() == ["in-0001.mkv", "out-0001.mkv"]  # no workspace left
    encoded = setup.storage.root / "chunks" / setup.parent / "out-0001.mkv"
    width, height, count = frames(ffmpeg_binaries, encoded)
    assert (width, height, count) == (160, 120, CLIP_SECONDS * 25)
    assert setup.events
    assert {e.job_id for e in setup.events} == {job.id}
    assert setup.events[-1].percent == 100.0

    # Redelivered after its first run finished: done at once, nothing run.
    calls = setup.binaries_calls
    again = await setup.run(job)
    assert isinstance(again, CompletedEvent)
    assert setup.binaries_calls == calls
    assert setup.stored() == ["in-0001.mkv", "out-0001.mkv"]


async def test_ladder_chunk_stores_one_file_per_rung(
    setup: Setup, chunk_file: Path, ffmpeg_binaries: Binaries
) -> None:
    await setup.put_input(chunk_file)
    renditions = (
        Rendition(height=180, video_bitrate_kbps=300),
        Rendition(height=120, video_bitrate_kbps=150),
    )
    op = LadderOp(renditions=renditions, audio_bitrates_kbps=())
    event = await setup.run(setup.job(op))
    assert isinstance(event, CompletedEvent), event
    assert setup.stored() == ["in-0000.mkv", "out-0000-r0.mkv", "out-0000-r1.mkv"]
    folder = setup.storage.root / "chunks" / setup.parent
    heights = [frames(ffmpeg_binaries, folder / f"out-0000-r{k}.mkv")[1] for k in (0, 1)]
    assert sorted(heights, reverse=True) == [180, 120]
    calls = setup.binaries_calls
    assert isinstance(await setup.run(setup.job(op)), CompletedEvent)
    assert setup.binaries_calls == calls


async def test_missing_input_fails_cleanly(setup: Setup) -> None:
    event = await setup.run(setup.job(TranscodeOp()))
    assert isinstance(event, FailedEvent)
    assert event.code is FailureCode.INTERNAL_ERROR
    assert event.message == "chunk input missing"
    assert setup.stored() == []


async def test_unreadable_input_fails_like_a_single_run(setup: Setup, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"not a video" * 1000)
    await setup.put_input(garbage)
    event = await setup.run(setup.job(TranscodeOp()))
    assert isinstance(event, FailedEvent)
    assert event.code is FailureCode.INVALID_MEDIA
    assert str(setup.storage.root) not in event.stderr_tail
    assert setup.stored() == ["in-0000.mkv"]


async def test_output_over_the_limit_fails(setup: Setup, chunk_file: Path) -> None:
    await setup.put_input(chunk_file)
    settings = setup.settings.model_copy(update={"max_output_bytes": 2000})
    runner = ChunkRunner(settings, setup.provide, setup.store)
    event = await runner.run(setup.job(TranscodeOp()), setup.events.append)
    assert isinstance(event, FailedEvent)
    assert event.code is FailureCode.OUTPUT_TOO_LARGE
    assert setup.stored() == ["in-0000.mkv"]


async def test_not_a_chunk_job_fails(setup: Setup) -> None:
    job = Job(spec=JobSpec(input=PathInput(path="clips/x.mp4"), operation=TranscodeOp()))
    event = await setup.run(job)
    assert isinstance(event, FailedEvent)
    assert event.code is FailureCode.INTERNAL_ERROR


async def test_cancel_stops_ffmpeg_and_removes_the_workspace(
    setup: Setup, chunk_file: Path
) -> None:
    await setup.put_input(chunk_file)
    slow = TranscodeOp(video_codec=VideoCodec.H265, preset=Preset.VERYSLOW, crf=10)
    task = asyncio.create_task(setup.run(setup.job(slow)))

    def encoding() -> bool:
        return any(name.startswith(".run-") for name in setup.stored()) and bool(setup.events)

    await eventually(encoding, timeout=30, what="the chunk's encode running")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert setup.stored() == ["in-0000.mkv"]


@pytest.mark.s3
async def test_chunk_runs_against_the_bucket(
    s3_server: S3Server, s3_bucket: str, chunk_file: Path, ffmpeg_binaries: Binaries, tmp_path: Path
) -> None:
    """STORAGE=s3: the same run, its input from and its output to the pool's bucket, its
    workspace in SCRATCH_ROOT."""
    settings = s3_server.settings(
        _env_file=None,
        s3_bucket=s3_bucket,
        media_root=tmp_path / "media",
        scratch_root=tmp_path / "scratch",
    )
    objects = S3ObjectStore.from_settings(settings)
    try:
        store = chunk_store(settings, LocalStorage(tmp_path / "media"), objects)
        runner = ChunkRunner(settings, lambda: ffmpeg_binaries, store)
        parent = new_job_id()
        upload = tmp_path / "upload.mkv"
        upload.write_bytes(chunk_file.read_bytes())
        await store.put(parent, input_name(0), upload)
        chunk = ChunkTask(parent=parent, index=0, count=1, start_s=0.0, duration_s=CLIP_SECONDS)
        spec = JobSpec(input=PathInput(path="clips/x.mp4"), operation=TranscodeOp(height=120))
        job = Job(id=chunk_job_id(parent, 0), spec=spec, chunk=chunk)
        event = await runner.run(job, lambda _: None)
        assert isinstance(event, CompletedEvent), event
        assert await store.has(parent, output_name(0))
        assert not (tmp_path / "scratch" / parent).exists()
        missing = job.model_copy(update={"chunk": chunk.model_copy(update={"index": 1})})
        failed = await runner.run(missing, lambda _: None)
        assert isinstance(failed, FailedEvent)
        assert failed.message == "chunk input missing"
    finally:
        await objects.close()
