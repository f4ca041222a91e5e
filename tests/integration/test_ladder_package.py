"""The ladder with real FFmpeg, one pass through the real Executor: HLS fMP4, HLS MPEG-TS,
DASH, and HLS+DASH packages are committed whole; the playlists parse (m3u8) and name each
variant with BANDWIDTH and RESOLUTION; every segment decodes (init + segment through FFmpeg);
the EXTINF durations add up to the input's; the keyframes of every rung fall at the same
times; the MPD parses and lists every representation; a small input is never upscaled.

The checks are helpers the HTTP and object-storage ladder tests share
(tests/integration/test_ladder_http.py, tests/integration/test_ladder_s3.py).
"""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import m3u8
import pytest

from ffpool.domain.events import CompletedEvent, FailedEvent, FailureCode
from ffpool.domain.jobs import (
    HlsSegmentType,
    Job,
    JobSpec,
    LadderOp,
    PackageFormat,
    PathInput,
    Preset,
    Rendition,
)
from ffpool.ffmpeg.binaries import Binaries
from ffpool.ffmpeg.executor import Executor
from ffpool.ffmpeg.ladder import (
    ladder_audio_argv,
    ladder_video_argv,
    package_argv,
    resolve_rungs,
)
from ffpool.ffmpeg.probe import probe
from ffpool.settings import Settings
from ffpool.storage.media import LocalStorage
from tests.conftest import make_clip

pytestmark = pytest.mark.ffmpeg

CLIP_SECONDS = 6.0
SEGMENT_SECONDS = 2.0
MPD_NS = {"mpd": "urn:mpeg:dash:schema:mpd:2011"}
Reader = Callable[[str], bytes]
"""A package file's bytes by name (from disk, over HTTP or from a bucket)."""


def ladder(**fields: Any) -> LadderOp:
    return LadderOp(segment_seconds=SEGMENT_SECONDS, preset=Preset.ULTRAFAST, **fields)


CASES = {
    "hls-fmp4": ladder(),
    "hls-ts": ladder(hls_segment_type=HlsSegmentType.TS, audio_bitrates_kbps=(96, 48)),
    "dash": ladder(formats=(PackageFormat.DASH,)),
    "hls-dash": ladder(formats=(PackageFormat.HLS, PackageFormat.DASH)),
}


@pytest.fixture(scope="module")
def ladder_root(ffmpeg_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A media root with a 640x360 6 s clip and a 320x180 2 s one (both with audio)."""
    root = tmp_path_factory.mktemp("ladder") / "media"
    (root / "clips").mkdir(parents=True)
    make_clip(ffmpeg_bin, root / "clips" / "wide.mp4", seconds=CLIP_SECONDS, size="640x360")
    make_clip(ffmpeg_bin, root / "clips" / "small.mp4", seconds=2, size="320x180")
    return root


def ladder_job(op: LadderOp, path: str = "clips/wide.mp4") -> Job:
    return Job(spec=JobSpec(input=PathInput(path=path), operation=op))


async def run_ladder(
    media_root: Path, op: LadderOp, path: str = "clips/wide.mp4"
) -> CompletedEvent:
    settings = Settings(_env_file=None, media_root=media_root)
    job = ladder_job(op, path)
    event = await Executor(settings, LocalStorage(media_root)).execute(job, lambda _: None)
    assert isinstance(event, CompletedEvent), event
    return event


def ffmpeg_decodes(ffmpeg: str, data: bytes, where: Path) -> None:
    where.write_bytes(data)
    done = subprocess.run(
        [ffmpeg, "-v", "error", "-xerror", "-i", str(where), "-f", "null", "-"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert not done.stderr.strip(), done.stderr.decode(errors="replace")


def keyframe_times(ffprobe: str, path: Path) -> list[float]:
    out = subprocess.run(
        [
            *(ffprobe, "-v", "error", "-select_streams", "v:0"),
            *("-show_entries", "packet=pts_time,flags", "-of", "csv=p=0", str(path)),
        ],
        capture_output=True,
        timeout=60,
        check=True,
        text=True,
    ).stdout
    times = []
    for line in out.splitlines():
        pts, _, flags = line.partition(",")
        if "K" in flags:
            times.append(round(float(pts), 3))
    return sorted(times)


def media_playlists(master: m3u8.M3U8) -> tuple[list[str], list[str]]:
    """(video variant URIs, audio rendition URIs) of a master playlist."""
    video = [p.uri for p in master.playlists if p.stream_info.resolution]
    audio = [m.uri for m in master.media if m.type == "AUDIO" and m.uri]
    return video, audio


def check_hls(read: Reader, scratch: Path, ffmpeg: str, ffprobe: str, rungs: int) -> None:
    """The HLS half of a package, every file read through `read`."""
    master = m3u8.loads(read("master.m3u8").decode())
    assert master.is_variant
    video, audio = media_playlists(master)
    assert len(video) == rungs
    for variant in master.playlists:
        assert variant.stream_info.bandwidth
    assert all(p.stream_info.resolution for p in master.playlists if p.uri in video)
    keyframes = []
    for k, uri in enumerate([*video, *audio]):
        playlist = m3u8.loads(read(uri).decode())
        total = sum(s.duration for s in playlist.segments)
        assert abs(total - CLIP_SECONDS) <= SEGMENT_SECONDS, (uri, total)
        init = read(playlist.segment_map[0].uri) if playlist.segment_map else b""
        whole = bytearray(init)
        for n, segment in enumerate(playlist.segments):
            data = read(segment.uri)
            ffmpeg_decodes(ffmpeg, init + data, scratch / f"one-{k}-{n}")
            whole += data
        if uri in video:
            joined = scratch / f"whole-{k}"
            joined.write_bytes(bytes(whole))
            keyframes.append(keyframe_times(ffprobe, joined))
    assert len(keyframes) == rungs
    assert all(times == keyframes[0] for times in keyframes), keyframes
    assert len(keyframes[0]) >= int(CLIP_SECONDS / SEGMENT_SECONDS)


def check_dash(read: Reader, scratch: Path, ffmpeg: str, representations: int) -> None:
    root = ET.fromstring(read("manifest.mpd"))
    reps = root.findall(".//mpd:Representation", MPD_NS)
    assert len(reps) == representations
    for rep in reps:
        assert int(rep.attrib["bandwidth"]) > 0
        template = rep.find("mpd:SegmentTemplate", MPD_NS)
        assert template is not None
        rid = rep.attrib["id"]
        init = read(template.attrib["initialization"].replace("$RepresentationID$", rid))
        media = template.attrib["media"].replace("$RepresentationID$", rid)
        timeline = template.findall("mpd:SegmentTimeline/mpd:S", MPD_NS)
        count = sum(int(s.attrib.get("r", "0")) + 1 for s in timeline)
        assert count >= int(CLIP_SECONDS / SEGMENT_SECONDS)
        start = int(template.attrib["startNumber"])
        for number in range(start, start + count):
            data = read(media.replace("$Number%05d$", f"{number:05d}"))
            ffmpeg_decodes(ffmpeg, init + data, scratch / f"dash-{rid}-{number}")
    video = [r for r in reps if r.attrib.get("mimeType", "").startswith("video/")]
    assert all(int(r.attrib["height"]) <= 360 for r in video)


def from_dir(directory: Path) -> Reader:
    return lambda name: (directory / name).read_bytes()


@pytest.mark.parametrize("case", list(CASES))
async def test_one_pass_package_committed_and_playable(
    case: str, ladder_root: Path, tmp_path: Path, ffmpeg_bin: str, ffprobe_bin: str
) -> None:
    op = CASES[case]
    event = await run_ladder(ladder_root, op)
    job_dir = ladder_root / "jobs" / event.job_id
    names = [o.name for o in event.outputs]
    # Every file the package holds was committed, and only those (no scratch left).
    on_disk = sorted(p.name for p in job_dir.iterdir() if not p.name.startswith(".ffpool-"))
    assert sorted(names) == on_disk
    assert len(set(names)) == len(names)
    for out in event.outputs:
        assert out.size == (job_dir / out.name).stat().st_size
    read = from_dir(job_dir)
    audios = len(op.audio_bitrates_kbps)
    if PackageFormat.HLS in op.formats:
        assert names[0] == "master.m3u8"
        check_hls(read, tmp_path, ffmpeg_bin, ffprobe_bin, rungs=2)
    if PackageFormat.DASH in op.formats:
        assert "manifest.mpd" in names
        check_dash(read, tmp_path, ffmpeg_bin, representations=2 + audios)
    else:
        assert "manifest.mpd" not in names
    suffix = ".ts" if op.hls_segment_type is HlsSegmentType.TS else ".m4s"
    assert any(n.endswith(suffix) for n in names)


async def test_a_small_input_is_never_upscaled(ladder_root: Path) -> None:
    event = await run_ladder(ladder_root, ladder(), path="clips/small.mp4")
    master = m3u8.load(str(ladder_root / "jobs" / event.job_id / "master.m3u8"))
    video, _ = media_playlists(master)
    assert len(video) == 1
    assert [p.stream_info.resolution for p in master.playlists if p.uri in video] == [(320, 180)]


async def test_explicit_rung_above_the_input_fails_the_job(ladder_root: Path) -> None:
    settings = Settings(_env_file=None, media_root=ladder_root)
    op = ladder(renditions=(Rendition(height=720, video_bitrate_kbps=2000),))
    event = await Executor(settings, LocalStorage(ladder_root)).execute(
        ladder_job(op), lambda _: None
    )
    assert isinstance(event, FailedEvent)
    assert event.code is FailureCode.INPUT_REJECTED
    assert "upscaled" in event.message


async def test_encoded_rungs_packaged_by_stream_copy(
    ladder_root: Path,
    tmp_path: Path,
    ffmpeg_binaries: Binaries,
    ffmpeg_bin: str,
    ffprobe_bin: str,
) -> None:
    """The chunked path's last step: rungs and audio encoded apart (ladder_video_argv,
    ladder_audio_argv), then packaged without re-encoding into the one pass's files."""
    op = CASES["hls-dash"]
    settings = Settings(_env_file=None, media_root=ladder_root)
    src = ladder_root / "clips" / "wide.mp4"
    info = await probe(ffmpeg_binaries, src, 30)
    rungs = resolve_rungs(op, info)
    rung_files = [tmp_path / f"rung-{k}.mkv" for k in range(len(rungs))]
    audio_files = [tmp_path / "audio-0.m4a"]
    out = tmp_path / ".package"
    out.mkdir()
    for argv in (
        ladder_video_argv(ffmpeg_binaries, settings, op, rungs, src, rung_files),
        ladder_audio_argv(ffmpeg_binaries, settings, op, src, audio_files),
        package_argv(ffmpeg_binaries, settings, op, rung_files, audio_files, out),
    ):
        subprocess.run(argv, check=True, capture_output=True, timeout=120)
    one_pass = await run_ladder(ladder_root, op)
    assert sorted(p.name for p in out.iterdir()) == sorted(o.name for o in one_pass.outputs)
    check_hls(from_dir(out), tmp_path, ffmpeg_bin, ffprobe_bin, rungs=len(rungs))
    check_dash(from_dir(out), tmp_path, ffmpeg_bin, representations=len(rungs) + 1)
