"""argv building: the exact argv of each operation and option."""

from __future__ import annotations

from pathlib import Path

import pytest

from ffpool.domain.jobs import (
    AudioCodec,
    AudioFormat,
    Container,
    ExtractAudioOp,
    ImageFormat,
    Preset,
    ProbeOp,
    ThumbnailOp,
    TranscodeOp,
    TrimMode,
    TrimOp,
    VideoCodec,
)
from ffpool.ffmpeg.argv import FORMAT_WHITELIST, Tool, build_plan, file_url, trim_container
from ffpool.ffmpeg.codecs import num
from ffpool.settings import Settings
from tests.unit.argv_cases import (
    BIN,
    HEAD,
    INPUT,
    JOB_DIR,
    MAX_PIXELS,
    SETTINGS,
    SRC,
    plan,
    tail,
)


def test_probe_runs_ffprobe_on_the_file_only() -> None:
    p = plan(ProbeOp())
    assert p.tool is Tool.FFPROBE
    assert list(p.argv) == [
        "/opt/ff/ffprobe",
        "-v",
        "error",
        "-hide_banner",
        *MAX_PIXELS,
        "-protocol_whitelist",
        "file",
        "-format_whitelist",
        FORMAT_WHITELIST,
        "-show_format",
        "-show_streams",
        "-of",
        "json",
        f"file:{SRC}",
    ]
    assert p.outputs == ()


def test_default_transcode() -> None:
    p = plan(TranscodeOp())
    assert list(p.argv) == [
        *HEAD,
        *INPUT,
        "-map",
        "0:v:0?",
        "-map",
        "0:a:0?",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "23",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-b:a",
        "128k",
        "-movflags",
        "+faststart",
        *tail("mp4", "output.mp4"),
    ]
    (out,) = p.outputs
    assert (out.name, out.content_type) == ("output.mp4", "video/mp4")
    assert out.final_path == JOB_DIR / "output.mp4"
    assert out.temp_path == JOB_DIR / ".output.mp4.part"
    assert p.probe_output
    assert p.expected_duration_s is None


def test_transcode_h265_bitrate_height_fps_in_mov() -> None:
    op = TranscodeOp(
        container=Container.MOV,
        video_codec=VideoCodec.H265,
        video_bitrate_kbps=2500,
        height=721,
        fps=29.97,
        preset=Preset.SLOW,
        audio_codec=AudioCodec.MP3,
        audio_bitrate_kbps=96,
    )
    assert list(plan(op).argv) == [
        *HEAD,
        *INPUT,
        "-map",
        "0:v:0?",
        "-map",
        "0:a:0?",
        "-c:v",
        "libx265",
        "-preset",
        "slow",
        "-b:v",
        "2500k",
        "-pix_fmt",
        "yuv420p",
        "-x265-params",
        "log-level=error",
        "-tag:v",
        "hvc1",
        "-vf",
        "scale=w=7680:h=720:force_original_aspect_ratio=decrease:force_divisible_by=2,fps=29.97",
        "-c:a",
        "libmp3lame",
        "-b:a",
        "96k",
        "-movflags",
        "+faststart",
        *tail("mov", "output.mov"),
    ]


def test_transcode_vp9_webm_constant_quality() -> None:
    op = TranscodeOp(
        container=Container.WEBM,
        video_codec=VideoCodec.VP9,
        audio_codec=AudioCodec.OPUS,
        crf=40,
        preset=Preset.ULTRAFAST,
    )
    assert list(plan(op).argv) == [
        *HEAD,
        *INPUT,
        "-map",
        "0:v:0?",
        "-map",
        "0:a:0?",
        "-c:v",
        "libvpx-vp9",
        "-deadline",
        "realtime",
        "-cpu-used",
        "8",
        "-row-mt",
        "1",
        "-crf",
        "40",
        "-b:v",
        "0",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "libopus",
        "-b:a",
        "128k",
        *tail("webm", "output.webm"),
    ]


def test_transcode_copy_and_none() -> None:
    op = TranscodeOp(container=Container.MKV, video_codec=VideoCodec.COPY, audio_codec="none")
    assert list(plan(op).argv) == [
        *HEAD,
        *INPUT,
        "-map",
        "0:v:0?",
        "-c:v",
        "copy",
        *tail("matroska", "output.mkv"),
    ]
    audio_only = TranscodeOp(container=Container.MKV, video_codec="none", audio_codec="copy")
    assert list(plan(audio_only).argv) == [
        *HEAD,
        *INPUT,
        "-map",
        "0:a:0?",
        "-c:a",
        "copy",
        *tail("matroska", "output.mkv"),
    ]


def test_threads_only_when_configured() -> None:
    assert "-threads" not in plan(TranscodeOp()).argv
    argv = list(plan(TranscodeOp(), s=Settings(_env_file=None, ffmpeg_threads=2)).argv)
    at = [i for i, arg in enumerate(argv) if arg == "-threads"]
    # The decoder's (an input option) and the encoder's (an output option), and the filters'.
    assert len(at) == 2
    assert at[0] < argv.index("-i") < at[1]
    assert all(argv[i + 1] == "2" for i in at)
    assert argv[argv.index("-filter_threads") + 1] == "2"
    assert argv[argv.index("-filter_complex_threads") + 1] == "2"


def test_thumbnail_seeks_before_the_input() -> None:
    op = ThumbnailOp(time=12.5, width=320, height=180, format=ImageFormat.WEBP)
    p = plan(op)
    assert list(p.argv) == [
        *HEAD,
        "-ss",
        "12.5",
        *INPUT,
        "-map",
        "0:v:0",
        "-frames:v",
        "1",
        "-vf",
        "scale=w=320:h=180:force_original_aspect_ratio=decrease",
        "-c:v",
        "libwebp",
        "-update",
        "1",
        *tail("image2", "thumbnail.webp"),
    ]
    assert not p.probe_output
    assert not p.track_percent
    assert p.outputs[0].content_type == "image/webp"


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [
        (None, None, None),
        # One side given: the other is bounded by the documented maximum, not the input.
        (200, None, "scale=w=200:h=4320:force_original_aspect_ratio=decrease"),
        (None, 90, "scale=w=7680:h=90:force_original_aspect_ratio=decrease"),
        (None, 2000, "scale=w=7680:h=2000:force_original_aspect_ratio=decrease"),
        (7680, 4320, "scale=w=7680:h=4320:force_original_aspect_ratio=decrease"),
    ],
)
def test_thumbnail_scale(width: int | None, height: int | None, expected: str | None) -> None:
    argv = list(plan(ThumbnailOp(width=width, height=height)).argv)
    assert "-ss" not in argv  # time 0: no seek
    assert (argv[argv.index("-vf") + 1] if "-vf" in argv else None) == expected
    assert argv[argv.index("-c:v") : argv.index("-c:v") + 4] == ["-c:v", "mjpeg", "-q:v", "2"]


@pytest.mark.parametrize(
    ("fmt", "codec", "muxer", "name", "bitrate"),
    [
        (AudioFormat.MP3, "libmp3lame", "mp3", "audio.mp3", True),
        (AudioFormat.AAC, "aac", "adts", "audio.aac", True),
        (AudioFormat.OPUS, "libopus", "opus", "audio.opus", True),
        (AudioFormat.FLAC, "flac", "flac", "audio.flac", False),
        (AudioFormat.WAV, "pcm_s16le", "wav", "audio.wav", False),
    ],
)
def test_extract_audio(fmt: AudioFormat, codec: str, muxer: str, name: str, bitrate: bool) -> None:
    p = plan(ExtractAudioOp(format=fmt, bitrate_kbps=160))
    rate = ["-b:a", "160k"] if bitrate else []
    assert list(p.argv) == [
        *HEAD,
        *INPUT,
        "-map",
        "0:a:0",
        "-c:a",
        codec,
        *rate,
        *tail(muxer, name),
    ]
    assert p.probe_output


def test_trim_copy_keeps_the_container() -> None:
    p = plan(TrimOp(start=1.25, duration=2))
    assert list(p.argv) == [
        *HEAD,
        "-ss",
        "1.25",
        *INPUT,
        "-t",
        "2",
        "-map",
        "0:v:0?",
        "-map",
        "0:a:0?",
        "-c",
        "copy",
        *tail("mp4", "trim.mp4"),
    ]
    assert (p.expected_duration_s, p.input_seek_s) == (2.0, 1.25)


def test_trim_reencode() -> None:
    argv = list(plan(TrimOp(duration=1, mode=TrimMode.REENCODE)).argv)
    assert argv[argv.index("-c:v") + 1] == "libx264"
    webm = list(plan(TrimOp(duration=1, mode="reencode"), src=Path("/m/x.WEBM")).argv)
    assert webm[webm.index("-c:v") + 1] == "libvpx-vp9"
    assert webm[webm.index("-c:a") + 1] == "libopus"
    assert webm[-3:] == ["-f", "webm", f"file:{JOB_DIR}/.trim.webm.part"]


@pytest.mark.parametrize(
    ("name", "container"),
    [
        ("a.mp4", "mp4"),
        ("a.M4V", "mp4"),
        ("a.mov", "mov"),
        ("a.webm", "webm"),
        ("a.mkv", "mkv"),
        ("a.avi", "mkv"),
        (".input", "mkv"),
        ("0123abcd", "mkv"),
    ],
)
def test_trim_container(name: str, container: str) -> None:
    assert trim_container(Path("/m") / name) == container


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0"),
        (1e-7, "0"),
        (0.1, "0.1"),
        (3600.5, "3600.5"),
        (1 / 3, "0.333333"),
        (604800.0, "604800"),
        (29.97, "29.97"),
    ],
)
def test_num_never_uses_an_exponent(value: float, text: str) -> None:
    assert num(value) == text


def test_paths_must_be_absolute() -> None:
    with pytest.raises(ValueError, match="absolute"):
        file_url(Path("clips/in.mp4"))
    with pytest.raises(ValueError, match="absolute"):
        build_plan(TranscodeOp(), SRC, Path("jobs/x"), BIN, SETTINGS)


def test_odd_input_names_stay_one_file_element() -> None:
    src = Path("/media/clips/-i concat:a|b,movie=x;subfile,,start,0:.mp4")
    argv = plan(TranscodeOp(), src=src).argv
    assert argv[argv.index("-i") + 1] == f"file:{src}"
    assert sum(1 for a in argv if "concat" in a) == 1
