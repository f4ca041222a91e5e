"""chunks/argv.py: the argv shapes of a chunked run (no FFmpeg run here; the real runs are in
tests/integration/test_chunk_pipeline.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ffpool.chunks import argv as chunk_argv
from ffpool.chunks.plan import ChunkPlan, Cut
from ffpool.domain.jobs import AudioCodec, Container, TranscodeOp, VideoCodec
from ffpool.ffmpeg import codecs
from ffpool.ffmpeg.argv import FORMAT_WHITELIST, build_plan
from ffpool.ffmpeg.binaries import Binaries
from ffpool.settings import Settings

BIN = Binaries(ffmpeg="/usr/bin/ffmpeg", ffprobe="/usr/bin/ffprobe", prefix=("prlimit", "--"))
SETTINGS = Settings(ffmpeg_threads=2)
SRC = Path("/media/jobs/abc/input.mp4")
WORK = Path("/media/chunks/abc/.run-1")


def after(argv: tuple[str, ...], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def values(argv: tuple[str, ...], flag: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == flag]


def plan_of(*packets: int) -> ChunkPlan:
    cuts = tuple(
        Cut(index=i, start_s=i * 10.0, duration_s=10.0, packet=p) for i, p in enumerate(packets)
    )
    return ChunkPlan(cuts=cuts, duration_s=10.0 * len(packets))


def test_keyframes_argv_reads_packets_only() -> None:
    argv = chunk_argv.keyframes_argv(BIN, SRC)
    assert argv[:3] == ("prlimit", "--", "/usr/bin/ffprobe")
    assert after(argv, "-select_streams") == "v:0"
    assert after(argv, "-show_entries") == "packet=pts_time,flags"
    assert after(argv, "-format_whitelist") == FORMAT_WHITELIST
    assert after(argv, "-protocol_whitelist") == "file"
    assert "-show_frames" not in argv
    assert "-count_frames" not in argv
    assert argv[-1] == f"file:{SRC}"


def test_cut_argv_splits_at_the_plan_packets() -> None:
    argv = chunk_argv.cut_argv(BIN, SETTINGS, SRC, plan_of(0, 250, 500), WORK)
    assert after(argv, "-map") == "0:v:0"
    assert after(argv, "-c") == "copy"
    assert "-copyinkf" in argv
    assert after(argv, "-f") == "segment"
    assert after(argv, "-segment_frames") == "250,500"
    assert after(argv, "-segment_format") == "matroska"
    assert after(argv, "-reset_timestamps") == "1"
    assert argv[-1] == f"file:{WORK}/in-%04d.mkv"
    assert "-max_pixels" not in argv  # a stream copy decodes nothing


def test_cut_argv_single_chunk_is_one_file() -> None:
    argv = chunk_argv.cut_argv(BIN, SETTINGS, SRC, plan_of(0), WORK)
    assert "segment" not in argv
    assert argv[-3:] == ("-f", "matroska", f"file:{WORK}/in-0000.mkv")


def test_cut_argv_refuses_a_pattern_in_the_directory() -> None:
    with pytest.raises(ValueError, match="%"):
        chunk_argv.cut_argv(BIN, SETTINGS, SRC, plan_of(0, 5), Path("/media/%d"))
    with pytest.raises(ValueError, match="absolute"):
        chunk_argv.cut_argv(BIN, SETTINGS, SRC, plan_of(0), Path("relative"))


@pytest.mark.parametrize(
    "op",
    [
        TranscodeOp(),
        TranscodeOp(container=Container.MP4, video_codec=VideoCodec.H265, crf=30, height=480),
        TranscodeOp(
            container=Container.WEBM, video_codec=VideoCodec.VP9, audio_codec=AudioCodec.OPUS
        ),
        TranscodeOp(container=Container.MKV, video_bitrate_kbps=900, preset="slow"),
    ],
)
def test_encode_argv_is_the_single_runs_video(op: TranscodeOp) -> None:
    argv = chunk_argv.encode_argv(BIN, SETTINGS, op, WORK / "in-0001.mkv", WORK / "out-0001.mkv")
    single = build_plan(op, SRC, Path("/media/jobs/abc"), BIN, SETTINGS).argv
    video_flags = ("-c:v", "-preset", "-crf", "-b:v", "-pix_fmt", "-vf", "-deadline", "-cpu-used")
    for flag in video_flags:
        assert values(argv, flag) == values(single, flag), flag
    assert values(argv, "-x265-params") == values(single, "-x265-params")
    assert values(argv, "-map") == ["0:v:0?"]
    assert "-c:a" not in argv
    assert "-movflags" not in argv
    assert "-tag:v" not in argv
    assert after(argv, "-progress") == "pipe:1"
    assert after(argv, "-threads") == "2"
    assert "-max_pixels" in argv
    assert argv[-3:] == ("-f", "matroska", f"file:{WORK}/out-0001.mkv")


def test_encode_argv_refuses_copy() -> None:
    op = TranscodeOp(video_codec=VideoCodec.COPY)
    with pytest.raises(ValueError, match="re-encoded"):
        chunk_argv.encode_argv(BIN, SETTINGS, op, WORK / "in.mkv", WORK / "out.mkv")


@pytest.mark.parametrize(
    ("op", "name", "muxer"),
    [
        (TranscodeOp(audio_bitrate_kbps=96), "audio.m4a", "mp4"),
        (
            TranscodeOp(
                container=Container.WEBM, video_codec=VideoCodec.VP9, audio_codec=AudioCodec.OPUS
            ),
            "audio.m4a",
            "mp4",
        ),
        (TranscodeOp(container=Container.MKV, audio_codec=AudioCodec.MP3), "audio.m4a", "mp4"),
        (
            TranscodeOp(container=Container.MKV, audio_codec=AudioCodec.COPY),
            "audio.mkv",
            "matroska",
        ),
    ],
)
def test_audio_argv_is_the_single_runs_audio(op: TranscodeOp, name: str, muxer: str) -> None:
    assert chunk_argv.audio_name(op) == name
    argv = chunk_argv.audio_argv(BIN, SETTINGS, op, SRC, WORK / name)
    single = build_plan(op, SRC, Path("/media/jobs/abc"), BIN, SETTINGS).argv
    for flag in ("-c:a", "-b:a"):
        assert values(argv, flag) == values(single, flag), flag
    assert values(argv, "-map") == ["0:a:0?"]
    assert "-c:v" not in argv
    assert argv[-3:] == ("-f", muxer, f"file:{WORK}/{name}")


def test_audio_argv_refuses_no_audio() -> None:
    op = TranscodeOp(audio_codec=AudioCodec.NONE)
    with pytest.raises(ValueError, match="no audio"):
        chunk_argv.audio_argv(BIN, SETTINGS, op, SRC, WORK / "a.m4a")


def test_concat_list_names_our_files_only() -> None:
    text = chunk_argv.concat_list(["out-0000.mkv", "out-0001-r2.mkv"])
    assert text == "ffconcat version 1.0\nfile out-0000.mkv\nfile out-0001-r2.mkv\n"
    for bad in (
        "../x.mkv",
        "/abs.mkv",
        "a b.mkv",
        "x.mkv\nfile /etc/passwd",
        ".hidden.mkv",
        "a.mp4",
    ):
        with pytest.raises(ValueError, match="not a chunk file"):
            chunk_argv.concat_list([bad])
    with pytest.raises(ValueError, match="nothing"):
        chunk_argv.concat_list([])


def test_concat_list_with_the_plans_durations() -> None:
    text = chunk_argv.concat_list(["out-0000.mkv", "out-0001.mkv"], [2.469133, 1.5])
    assert text == (
        "ffconcat version 1.0\n"
        "file out-0000.mkv\nduration 2.469133\n"
        "file out-0001.mkv\nduration 1.5\n"
    )
    with pytest.raises(ValueError, match="one duration"):
        chunk_argv.concat_list(["out-0000.mkv"], [1.0, 2.0])


@pytest.mark.parametrize("container", list(Container))
def test_join_argv_writes_the_single_runs_container(container: Container) -> None:
    video = VideoCodec.VP9 if container is Container.WEBM else VideoCodec.H264
    audio = AudioCodec.OPUS if container is Container.WEBM else AudioCodec.AAC
    op = TranscodeOp(container=container, video_codec=video, audio_codec=audio)
    out = Path("/media/jobs/abc/.run-2/.output.part")
    argv = chunk_argv.join_argv(
        BIN, SETTINGS, WORK / "list.ffconcat", WORK / "audio.m4a", container, out
    )
    single = build_plan(op, SRC, Path("/media/jobs/abc"), BIN, SETTINGS).argv
    # the concat input: its own narrow whitelist, safe names only
    concat = argv.index("concat")
    assert argv[concat - 1] == "-f"
    assert after(argv, "-safe") == "1"
    assert values(argv, "-format_whitelist") == ["concat,matroska", FORMAT_WHITELIST]
    assert values(argv, "-i") == [f"file:{WORK}/list.ffconcat", f"file:{WORK}/audio.m4a"]
    assert values(argv, "-map") == ["0:v:0", "1:a:0"]
    assert after(argv, "-c") == "copy"
    assert "-copyts" in argv
    assert values(argv, "-movflags") == values(single, "-movflags")
    assert after(argv, "-fs") == after(single, "-fs") == str(SETTINGS.max_output_bytes)
    assert values(argv, "-map_metadata") == values(single, "-map_metadata") == ["-1"]
    assert argv[-2:] == (codecs.MUXERS[container], f"file:{out}")
    assert argv[-3] == "-f"
    assert values(single, "-f")[-1] == codecs.MUXERS[container]


def test_join_argv_tags_hevc_for_apple_like_the_single_run() -> None:
    op = TranscodeOp(container=Container.MP4, video_codec=VideoCodec.H265)
    single = build_plan(op, SRC, Path("/media/jobs/abc"), BIN, SETTINGS).argv
    out = WORK / "o.mp4"
    argv = chunk_argv.join_argv(
        BIN, SETTINGS, WORK / "l", None, Container.MP4, out, video_codec=VideoCodec.H265
    )
    assert values(argv, "-tag:v") == values(single, "-tag:v") == ["hvc1"]
    assert values(argv, "-map") == ["0:v:0"]  # no audio
    assert len(values(argv, "-i")) == 1


def test_no_element_is_user_text() -> None:
    """Every argument of every builder is a constant, a number or one of our paths."""
    op = TranscodeOp(height=720, crf=20)
    runs = [
        chunk_argv.keyframes_argv(BIN, SRC),
        chunk_argv.cut_argv(BIN, SETTINGS, SRC, plan_of(0, 9), WORK),
        chunk_argv.encode_argv(BIN, SETTINGS, op, WORK / "in.mkv", WORK / "out.mkv"),
        chunk_argv.audio_argv(BIN, SETTINGS, op, SRC, WORK / "audio.m4a"),
        chunk_argv.join_argv(BIN, SETTINGS, WORK / "l", WORK / "a.m4a", Container.MP4, WORK / "o"),
    ]
    for argv in runs:
        for arg in argv:
            assert isinstance(arg, str)
            assert "\n" not in arg
            assert "\x00" not in arg
            paths = arg.startswith(("file:/", "/", "prlimit"))
            assert paths or arg.isascii(), arg
