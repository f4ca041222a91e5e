"""The chunked encode with real FFmpeg and no backend: keyframes → plan → cut → encode each
chunk → audio once → join, against the single run of the same TranscodeOp on the same input.

The joined output must have the single run's frames at the single run's times: the audio is
one whole stream, so audio and video stay in sync at every chunk boundary exactly when the
video timeline is the single run's (docs/chunks.md).
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ffpool.chunks import argv as chunk_argv
from ffpool.chunks.plan import ChunkPlan, input_name, output_name, parse_keyframes, plan_chunks
from ffpool.domain.jobs import AudioCodec, Container, TranscodeOp, VideoCodec
from ffpool.ffmpeg.argv import build_plan
from ffpool.ffmpeg.binaries import Binaries
from ffpool.settings import Settings

pytestmark = pytest.mark.ffmpeg

SECONDS = 14
FPS = 25
FRAME_S = 1 / FPS
CHUNK_SECONDS = 3.0


def make_source(ffmpeg: str, dest: Path, *, bframes: bool, rate: str = str(FPS)) -> Path:
    """320x240 at 25 fps with a tone; a keyframe every 37 frames (1.48 s), none elsewhere."""
    x264 = "keyint=37:min-keyint=37:scenecut=0:" + ("bframes=2" if bframes else "bframes=0")
    subprocess.run(
        [
            *(ffmpeg, "-hide_banner", "-loglevel", "error", "-y"),
            *("-f", "lavfi", "-i", f"testsrc2=size=320x240:rate={rate}:duration={SECONDS}"),
            *("-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={SECONDS}"),
            *("-c:v", "libx264", "-preset", "veryfast", "-x264-params", x264),
            *("-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(dest)),
        ],
        check=True,
        timeout=120,
    )
    return dest


@pytest.fixture(scope="module")
def bframes_clip(ffmpeg_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_source(ffmpeg_bin, tmp_path_factory.mktemp("src") / "b.mp4", bframes=True)


@pytest.fixture(scope="module")
def plain_clip(ffmpeg_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_source(ffmpeg_bin, tmp_path_factory.mktemp("src") / "p.mp4", bframes=False)


def run(argv: tuple[str, ...] | list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def probe_json(binaries: Binaries, path: Path, *args: str) -> Any:
    return json.loads(run([binaries.ffprobe, "-v", "error", *args, "-of", "json", str(path)]))


def duration(binaries: Binaries, path: Path) -> float:
    return float(
        probe_json(binaries, path, "-show_entries", "format=duration")["format"]["duration"]
    )


def video_times(binaries: Binaries, path: Path) -> list[float]:
    found = probe_json(binaries, path, "-select_streams", "v:0", "-show_entries", "frame=pts_time")
    return [round(float(frame["pts_time"]), 6) for frame in found["frames"]]


def audio_packets(binaries: Binaries, path: Path) -> list[tuple[float, float]]:
    found = probe_json(
        binaries, path, "-select_streams", "a:0", "-show_entries", "packet=pts_time,duration_time"
    )
    return [(float(p["pts_time"]), float(p["duration_time"])) for p in found["packets"]]


def ssim(binaries: Binaries, a: Path, b: Path) -> float:
    done = subprocess.run(
        [
            binaries.ffmpeg,
            "-hide_banner",
            "-i",
            str(a),
            "-i",
            str(b),
            "-lavfi",
            "ssim",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    match = re.search(r"All:([0-9.]+)", done.stderr)
    assert match, done.stderr[-2000:]
    return float(match.group(1))


def stream_tags(binaries: Binaries, path: Path) -> list[tuple[str, str]]:
    found = probe_json(binaries, path, "-show_entries", "stream=codec_name,codec_tag_string")
    return [(s["codec_name"], s["codec_tag_string"]) for s in found["streams"]]


def top_boxes(path: Path) -> list[str]:
    """The top-level boxes of an MP4/MOV file, in order."""
    data, boxes, at = path.read_bytes(), [], 0
    while at + 8 <= len(data):
        size = int.from_bytes(data[at : at + 4], "big")
        boxes.append(data[at + 4 : at + 8].decode("latin-1"))
        if size == 1:
            size = int.from_bytes(data[at + 8 : at + 16], "big")
        if size < 8:
            break
        at += size
    return boxes


@dataclass
class Outputs:
    plan: ChunkPlan
    joined: Path
    single: Path


def chunked(
    binaries: Binaries, settings: Settings, op: TranscodeOp, src: Path, work: Path
) -> Outputs:
    """Every step the coordinator and the chunk runners take, in one process, in order."""
    keyframes = parse_keyframes(run(chunk_argv.keyframes_argv(binaries, src)))
    plan = plan_chunks(keyframes, duration(binaries, src), CHUNK_SECONDS, 256)
    cut_dir, out_dir = work / "cut", work / "encoded"
    cut_dir.mkdir()
    out_dir.mkdir()
    run(chunk_argv.cut_argv(binaries, settings, src, plan, cut_dir))
    assert sorted(p.name for p in cut_dir.iterdir()) == [input_name(c.index) for c in plan.cuts]
    for cut in plan.cuts:
        run(
            chunk_argv.encode_argv(
                binaries,
                settings,
                op,
                cut_dir / input_name(cut.index),
                out_dir / output_name(cut.index),
            )
        )
    audio = work / chunk_argv.audio_name(op)
    run(chunk_argv.audio_argv(binaries, settings, op, src, audio))
    list_file = out_dir / "chunks.ffconcat"
    names = [output_name(c.index) for c in plan.cuts]
    list_file.write_text(chunk_argv.concat_list(names, [c.duration_s for c in plan.cuts]))
    joined = work / f"joined.{op.container.value}"
    codec = op.video_codec
    run(
        chunk_argv.join_argv(
            binaries, settings, list_file, audio, op.container, joined, video_codec=codec
        )
    )
    single_dir = work / "single"
    single_dir.mkdir()
    single_plan = build_plan(op, src, single_dir, binaries, settings)
    run(single_plan.argv)
    return Outputs(plan, joined, single_plan.outputs[0].temp_path)


CASES = {
    "mp4-h264-aac": TranscodeOp(),
    "webm-vp9-opus": TranscodeOp(
        container=Container.WEBM, video_codec=VideoCodec.VP9, audio_codec=AudioCodec.OPUS
    ),
    "mkv-h264-mp3": TranscodeOp(container=Container.MKV, audio_codec=AudioCodec.MP3, crf=26),
    "mov-h265-aac": TranscodeOp(container=Container.MOV, video_codec=VideoCodec.H265),
}


@pytest.mark.parametrize(
    ("case", "bframes"),
    [
        ("mp4-h264-aac", True),
        ("webm-vp9-opus", False),
        ("mkv-h264-mp3", True),
        ("mov-h265-aac", False),
    ],
)
def test_chunked_equals_single_run(
    case: str,
    bframes: bool,
    ffmpeg_binaries: Binaries,
    bframes_clip: Path,
    plain_clip: Path,
    tmp_path: Path,
) -> None:
    op = CASES[case]
    src = bframes_clip if bframes else plain_clip
    settings = Settings(media_root=tmp_path)
    out = chunked(ffmpeg_binaries, settings, op, src, tmp_path)
    assert out.plan.count >= 4

    joined_times = video_times(ffmpeg_binaries, out.joined)
    single_times = video_times(ffmpeg_binaries, out.single)
    assert len(joined_times) == len(single_times) == SECONDS * FPS
    # every frame at the single run's time: A/V sync holds at every boundary
    assert joined_times == single_times

    assert duration(ffmpeg_binaries, out.joined) == pytest.approx(
        duration(ffmpeg_binaries, out.single), abs=FRAME_S
    )
    joined_audio = audio_packets(ffmpeg_binaries, out.joined)
    single_audio = audio_packets(ffmpeg_binaries, out.single)
    assert len(joined_audio) == len(single_audio)
    assert joined_audio[0][0] == pytest.approx(single_audio[0][0], abs=0.001)
    joined_end = joined_audio[-1][0] + joined_audio[-1][1]
    single_end = single_audio[-1][0] + single_audio[-1][1]
    assert joined_end == pytest.approx(single_end, abs=0.001)

    assert ssim(ffmpeg_binaries, out.joined, out.single) >= 0.98
    # and as close to the source as the single run, within 0.01 (docs/chunks.md)
    to_source = ssim(ffmpeg_binaries, out.joined, src)
    assert to_source >= ssim(ffmpeg_binaries, out.single, src) - 0.01
    # the same container details: codec tags (hvc1 for Apple), faststart's box order
    assert stream_tags(ffmpeg_binaries, out.joined) == stream_tags(ffmpeg_binaries, out.single)
    if op.container in (Container.MP4, Container.MOV):
        assert top_boxes(out.joined) == top_boxes(out.single)
        assert top_boxes(out.joined).index("moov") < top_boxes(out.joined).index("mdat")


def test_cut_is_exact_to_the_packet(
    ffmpeg_binaries: Binaries, bframes_clip: Path, tmp_path: Path
) -> None:
    """Each cut chunk starts with the planned keyframe and holds exactly its packets."""
    settings = Settings(media_root=tmp_path)
    keyframes = parse_keyframes(run(chunk_argv.keyframes_argv(ffmpeg_binaries, bframes_clip)))
    assert [k.time_s for k in keyframes][:3] == [0.0, 1.48, 2.96]
    plan = plan_chunks(keyframes, duration(ffmpeg_binaries, bframes_clip), CHUNK_SECONDS, 256)
    run(chunk_argv.cut_argv(ffmpeg_binaries, settings, bframes_clip, plan, tmp_path))
    ends = [cut.packet for cut in plan.cuts[1:]] + [SECONDS * FPS]
    for cut, end in zip(plan.cuts, ends, strict=True):
        found = probe_json(
            ffmpeg_binaries,
            tmp_path / input_name(cut.index),
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=flags",
        )
        packets = found["packets"]
        assert len(packets) == end - cut.packet
        assert "K" in packets[0]["flags"]


def test_ntsc_rate_within_a_millisecond(
    ffmpeg_binaries: Binaries, ffmpeg_bin: str, tmp_path: Path
) -> None:
    """At 30000/1001 fps the chunk files' Matroska timestamps (milliseconds) round each
    frame's time and each chunk's start: the joined frames are the single run's, each within
    a millisecond, and that error does not add up from chunk to chunk (the list's durations:
    chunks/argv.py `concat_list`)."""
    src = make_source(ffmpeg_bin, tmp_path / "ntsc.mp4", bframes=True, rate="30000/1001")
    out = chunked(ffmpeg_binaries, Settings(media_root=tmp_path), TranscodeOp(), src, tmp_path)
    assert out.plan.count >= 4
    joined = video_times(ffmpeg_binaries, out.joined)
    single = video_times(ffmpeg_binaries, out.single)
    assert len(joined) == len(single)
    assert max(abs(a - b) for a, b in zip(joined, single, strict=True)) <= 0.0011
    assert duration(ffmpeg_binaries, out.joined) == pytest.approx(
        duration(ffmpeg_binaries, out.single), abs=0.001
    )
