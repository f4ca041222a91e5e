"""Bounded results with real FFmpeg: a 0.47 MB file with 1,000 audio streams probes to a
`completed` event with MAX_STREAMS streams and `streams_truncated`, and 1,000 such records
retained by a server stay within MAX_RETAINED_BYTES. Measured figures are printed (`-s`) and
quoted in docs/security.md."""

from __future__ import annotations

import gc
import subprocess
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from ffpool.backends.rabbitmq.records import RecordCache
from ffpool.backends.retention import RetainedBytes
from ffpool.domain import bounds
from ffpool.domain.events import CompletedEvent
from ffpool.domain.jobs import Job, JobSpec, PathInput, ProbeOp
from ffpool.ffmpeg.executor import Executor
from ffpool.ffmpeg.probe import parse_ffprobe_json
from ffpool.settings import Settings
from ffpool.storage.media import LocalStorage

pytestmark = pytest.mark.ffmpeg
STREAMS = 1000
RECORDS = 1000
T = TypeVar("T")


@pytest.fixture(scope="module")
def many_streams(ffmpeg_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One 20 ms audio input mapped 1,000 times into Matroska (no re-encoding)."""
    work = tmp_path_factory.mktemp("many")
    tiny, many = work / "tiny.wav", work / "many.mka"
    run = [ffmpeg_bin, "-v", "error", "-nostdin", "-y"]
    subprocess.run(
        [
            *run,
            "-f",
            "lavfi",
            "-i",
            "anullsrc=r=8000:cl=mono",
            "-t",
            "0.02",
            "-c:a",
            "pcm_s16le",
            str(tiny),
        ],
        check=True,
        timeout=60,
    )
    maps = [arg for _ in range(STREAMS) for arg in ("-map", "0:a")]
    subprocess.run([*run, "-i", str(tiny), *maps, "-c", "copy", str(many)], check=True, timeout=60)
    assert many.stat().st_size < 1024 * 1024  # a small upload ("0.4 MB")
    return many


def unbounded_event(ffprobe_bin: str, path: Path, job_id: str) -> CompletedEvent:
    """What `completed` carried before: every stream ffprobe reports."""
    out = subprocess.run(
        [ffprobe_bin, "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    info = parse_ffprobe_json(out.stdout)
    assert len(info.streams) == STREAMS
    return CompletedEvent(job_id=job_id, processing_time_s=0.1, metadata=info)


def allocated(build: Callable[[], T]) -> tuple[T, int]:
    """What `build` returns, and the bytes it still holds allocated (tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        value = build()
        gc.collect()
        return value, tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


async def test_probe_of_1000_streams_is_bounded_and_flagged(
    media_root: Path, many_streams: Path, ffprobe_bin: str
) -> None:
    (media_root / "clips" / "many.mka").write_bytes(many_streams.read_bytes())
    settings = Settings(_env_file=None, media_root=media_root)
    job = Job(spec=JobSpec(input=PathInput(path="clips/many.mka"), operation=ProbeOp()))

    event = await Executor(settings, LocalStorage(media_root)).execute(job, lambda _: None)

    assert isinstance(event, CompletedEvent)
    assert event.metadata is not None
    assert len(event.metadata.streams) == bounds.MAX_STREAMS
    assert event.metadata.streams_truncated
    assert event.metadata.streams[0].codec_type == "audio"
    after = len(event.model_dump_json())
    before = len(unbounded_event(ffprobe_bin, many_streams, job.id).model_dump_json())
    print(f"\ncompleted event: {before} bytes unbounded, {after} bytes bounded")
    assert after < 8 * 1024 < 90 * 1024 < before


def test_1000_retained_records_of_1000_streams_stay_within_budget(
    many_streams: Path, ffprobe_bin: str
) -> None:
    wire = unbounded_event(ffprobe_bin, many_streams, "0" * 32).model_dump_json()
    ids = [f"{i:032x}" for i in range(RECORDS)]
    settings = Settings(_env_file=None)
    cache = RecordCache(settings.max_retained_jobs, RetainedBytes.from_settings(settings))

    def retain(some: list[str]) -> None:
        for job_id in some:  # each event parsed from the wire, as a RabbitMQ server gets it
            cache.fold(CompletedEvent.model_validate_json(wire.replace("0" * 32, job_id)))

    # Memory is traced for a sample only: tracing every allocation triples the run time.
    sample = 50
    _, unbounded_bytes = allocated(
        lambda: [CompletedEvent.model_validate_json(wire) for _ in range(sample // 5)]
    )
    _, retained_bytes = allocated(lambda: retain(ids[:sample]))
    retain(ids[sample:])

    records = [cache.get(job_id) for job_id in ids]
    assert all(r is not None and r.result is not None for r in records)
    serialized = sum(len(r.model_dump_json()) for r in records if r is not None)
    assert serialized <= settings.max_retained_bytes
    per_before, per_after = unbounded_bytes // (sample // 5), retained_bytes // sample
    print(
        f"\nin memory per record: {per_before} bytes unbounded, {per_after} bytes bounded; "
        f"{RECORDS} records: {serialized} bytes serialized, ~{per_after * RECORDS} in memory"
    )
    assert per_after * 20 < per_before
    assert per_after * RECORDS < 64 * 1024 * 1024
