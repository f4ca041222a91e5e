"""The ladder's pure half: rungs from the probe (never upscaled, aspect kept, even sizes,
limits, refusals), its argv lists (no user text, aligned keyframes) and content types."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ffpool.domain.content_types import content_type
from ffpool.domain.events import FailureCode, MediaInfo, StreamInfo
from ffpool.domain.jobs import H264Profile, HlsSegmentType, LadderOp, PackageFormat, Rendition
from ffpool.domain.operations import MAX_RUNGS
from ffpool.ffmpeg import ladder, ladder_mux, ladder_rungs
from ffpool.ffmpeg.argv import build_plan
from ffpool.ffmpeg.binaries import Binaries
from ffpool.ffmpeg.outcome import JobFailure
from ffpool.settings import Settings

BINARIES = Binaries(ffmpeg="/usr/bin/ffmpeg", ffprobe="/usr/bin/ffprobe")
SETTINGS = Settings(_env_file=None)
JOB_DIR = Path("/media/jobs/0123456789abcdef0123456789abcdef/.run-x")


def media(
    width: int = 1920, height: int = 1080, audio: bool = True, duration: float = 60.0
) -> MediaInfo:
    streams = [
        StreamInfo(index=0, codec_type="video", codec_name="h264", width=width, height=height)
    ]
    if audio:
        streams.append(StreamInfo(index=1, codec_type="audio", codec_name="aac"))
    return MediaInfo(duration=duration, streams=tuple(streams))


def sizes(rungs: tuple[ladder.Rung, ...]) -> list[tuple[int, int]]:
    return [(r.width, r.height) for r in rungs]


def test_default_ladder_on_1080p_input() -> None:
    rungs = ladder.resolve_rungs(LadderOp(), media())
    assert sizes(rungs) == [(1920, 1080), (1280, 720), (852, 480), (640, 360), (426, 240)]
    assert [r.video_bitrate_kbps for r in rungs] == [5000, 2800, 1400, 800, 400]


def test_default_ladder_never_upscales() -> None:
    rungs = ladder.resolve_rungs(LadderOp(), media(640, 360))
    assert sizes(rungs) == [(640, 360), (426, 240)]
    assert all(r.height <= 360 for r in rungs)


def test_input_below_the_smallest_rung_gets_one_rung_at_its_own_height() -> None:
    rungs = ladder.resolve_rungs(LadderOp(), media(320, 180))
    assert sizes(rungs) == [(320, 180)]
    assert rungs[0].video_bitrate_kbps >= ladder_rungs.MIN_SMALL_KBPS


@pytest.mark.parametrize(("width", "height"), [(1080, 1920), (1440, 1080), (1000, 1000)])
def test_width_follows_the_aspect_and_sizes_are_even(width: int, height: int) -> None:
    for rung in ladder.resolve_rungs(LadderOp(), media(width, height)):
        assert rung.width % 2 == 0
        assert rung.height % 2 == 0
        assert abs(rung.width / rung.height - width / height) < 0.02


def test_odd_heights_round_down_to_even() -> None:
    op = LadderOp(renditions=(Rendition(height=301, video_bitrate_kbps=500),))
    (rung,) = ladder.resolve_rungs(op, media(641, 361))
    assert (rung.width, rung.height) == (532, 300)


def test_explicit_rungs_sorted_highest_first_with_profile() -> None:
    op = LadderOp(
        renditions=(
            Rendition(height=240, video_bitrate_kbps=300, profile=H264Profile.BASELINE),
            Rendition(height=720, video_bitrate_kbps=2000),
        )
    )
    rungs = ladder.resolve_rungs(op, media())
    assert [r.height for r in rungs] == [720, 240]
    assert rungs[1].profile is H264Profile.BASELINE


def refusal(op: LadderOp, info: MediaInfo) -> str:
    with pytest.raises(JobFailure) as caught:
        ladder.resolve_rungs(op, info)
    assert caught.value.code is FailureCode.INPUT_REJECTED
    return caught.value.message


def test_explicit_rung_above_the_input_is_refused() -> None:
    op = LadderOp(renditions=(Rendition(height=720, video_bitrate_kbps=2000),))
    assert "upscaled" in refusal(op, media(640, 360))


def test_no_video_is_refused() -> None:
    info = MediaInfo(streams=(StreamInfo(index=0, codec_type="audio", codec_name="aac"),))
    assert "video stream" in refusal(LadderOp(), info)


def test_total_pixels_limit() -> None:
    op = LadderOp(
        renditions=tuple(Rendition(height=h, video_bitrate_kbps=9000) for h in (4320, 2160))
    )
    assert "pixels" in refusal(op, media(7680, 4320))


def test_rungs_equal_once_even_are_refused() -> None:
    op = LadderOp(
        renditions=(
            Rendition(height=300, video_bitrate_kbps=500),
            Rendition(height=301, video_bitrate_kbps=600),
        )
    )
    assert "same height" in refusal(op, media())


def test_too_many_package_files_refused_before_running() -> None:
    op = LadderOp(segment_seconds=1.0)
    with pytest.raises(JobFailure) as caught:
        build_plan(op, Path("/in/x.mp4"), JOB_DIR, BINARIES, SETTINGS, media(duration=3600.0))
    assert caught.value.code is FailureCode.INPUT_REJECTED
    assert str(ladder.MAX_PACKAGE_FILES) in caught.value.message


def test_estimate_covers_a_real_package() -> None:
    # 6 s at 2 s segments, two rungs and one audio made 17 files (tests/integration).
    assert ladder_rungs.package_file_estimate(LadderOp(segment_seconds=2), 2, 1, 6.0) >= 17


# --- argv ---------------------------------------------------------------------------------

OPS = [
    LadderOp(),
    LadderOp(hls_segment_type=HlsSegmentType.TS, audio_bitrates_kbps=(96, 64)),
    LadderOp(formats=(PackageFormat.DASH,)),
    LadderOp(formats=(PackageFormat.HLS, PackageFormat.DASH), audio_bitrates_kbps=()),
]


@pytest.mark.parametrize("op", OPS)
def test_one_pass_plan_writes_into_its_package_dir(op: LadderOp) -> None:
    plan = build_plan(op, Path("/in/x.mp4"), JOB_DIR, BINARIES, SETTINGS, media())
    assert plan.output_dir == JOB_DIR / ladder_mux.PACKAGE_DIR
    assert plan.outputs == ()
    outs = [a for a in plan.argv if a.startswith("file:") and "/in/" not in a]
    assert outs
    assert all(a.startswith(f"file:{plan.output_dir}/") for a in outs)
    # Every rung has keyframes at the segment boundaries, none chosen by content.
    assert plan.argv[plan.argv.index("-sc_threshold") + 1] == "0"
    assert "expr:gte(t,n_forced*4)" in plan.argv


def test_argv_carries_no_user_text() -> None:
    """Everything in the argv is ours: the op's values only as formatted numbers and enum
    values. A ladder has no free text field at all; the input path is ours too."""
    op = LadderOp(
        renditions=(Rendition(height=480, video_bitrate_kbps=1234, profile=H264Profile.MAIN),),
        audio_bitrates_kbps=(77,),
        segment_seconds=2.5,
    )
    plan = build_plan(op, Path("/in/x.mp4"), JOB_DIR, BINARIES, SETTINGS, media())
    joined = " ".join(plan.argv)
    assert "1234k" in joined
    assert "77k" in joined
    assert "n_forced*2.5" in joined
    for arg in plan.argv:
        assert arg.isprintable()
        assert "\n" not in arg
    allowed_values = {"main", "veryfast"}
    assert allowed_values <= set(plan.argv)


def test_build_plan_needs_the_probe() -> None:
    with pytest.raises(ValueError, match="probe"):
        build_plan(LadderOp(), Path("/in/x.mp4"), JOB_DIR, BINARIES, SETTINGS)


def test_video_argv_one_matroska_file_per_rung() -> None:
    rungs = ladder.resolve_rungs(LadderOp(), media(640, 360))
    outs = [Path(f"/s/out-0000-r{k}.mkv") for k in range(len(rungs))]
    argv = ladder.ladder_video_argv(BINARIES, SETTINGS, LadderOp(), rungs, Path("/s/in.mkv"), outs)
    assert argv.count("matroska") == len(rungs)
    assert argv.count("-an") == len(rungs)
    assert "-progress" in argv
    assert argv[argv.index("-progress") + 1] == "pipe:1"
    assert [a for a in argv if a.startswith("file:/s/out")] == [f"file:{o}" for o in outs]
    with pytest.raises(ValueError, match="one output per rung"):
        ladder.ladder_video_argv(BINARIES, SETTINGS, LadderOp(), rungs, Path("/s/in"), outs[:1])


def test_audio_argv_one_file_per_bitrate() -> None:
    op = LadderOp(audio_bitrates_kbps=(128, 64))
    outs = [Path("/s/audio-0.m4a"), Path("/s/audio-1.m4a")]
    argv = ladder.ladder_audio_argv(BINARIES, SETTINGS, op, Path("/s/in.mp4"), outs)
    assert "128k" in argv
    assert "64k" in argv
    assert argv.count("mp4") == 2


def test_package_argv_copies_and_declares_bitrates() -> None:
    op = LadderOp(formats=(PackageFormat.HLS, PackageFormat.DASH))
    rungs = [Path("/s/rung-0.mkv"), Path("/s/rung-1.mkv")]
    argv = ladder.package_argv(
        BINARIES, SETTINGS, op, rungs, [Path("/s/audio-0.m4a")], Path("/s/.package")
    )
    assert argv[argv.index("-c") + 1] == "copy"
    assert "libx264" not in argv
    # The default ladder's two lowest rungs, highest first (what resolve_rungs kept).
    assert argv[argv.index("-b:v:0") + 1] == "800k"
    assert argv[argv.index("-b:v:1") + 1] == "400k"
    assert argv[-1] == "file:/s/.package/manifest.mpd"
    assert "-hls_playlist" in argv


def test_hls_variant_map() -> None:
    assert ladder_mux.variant_map(2, 1) == (
        "v:0,agroup:audio,name:v0 v:1,agroup:audio,name:v1 a:0,agroup:audio,name:a0"
    )
    assert ladder_mux.variant_map(1, 0) == "v:0,name:v0"


# --- content types --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("master.m3u8", "application/vnd.apple.mpegurl"),
        ("manifest.mpd", "application/dash+xml"),
        ("seg-0-00001.m4s", "video/iso.segment"),
        ("seg-v0-00000.ts", "video/mp2t"),
        ("init-0.mp4", "video/mp4"),
        ("audio-0.m4a", "audio/mp4"),
    ],
)
def test_content_types(name: str, expected: str) -> None:
    assert content_type(name) == expected


def resolved(op: LadderOp, info: MediaInfo) -> tuple[ladder.Rung, ...] | JobFailure:
    try:
        return ladder.resolve_rungs(op, info)
    except JobFailure as exc:
        return exc


@given(
    width=st.integers(16, 7680),
    height=st.integers(16, 4320),
    heights=st.lists(st.integers(16, 4320), min_size=1, max_size=6, unique=True) | st.none(),
)
def test_rungs_are_even_never_upscaled_and_keep_the_aspect(
    width: int, height: int, heights: list[int] | None
) -> None:
    renditions = (
        None
        if heights is None
        else tuple(Rendition(height=h, video_bitrate_kbps=500) for h in heights)
    )
    op = LadderOp(renditions=renditions)
    rungs = resolved(op, media(width, height))
    if isinstance(rungs, JobFailure):
        assert rungs.code is FailureCode.INPUT_REJECTED
        assert heights is not None  # the default ladder always fits
        return
    assert 1 <= len(rungs) <= MAX_RUNGS
    assert sum(r.width * r.height for r in rungs) <= ladder.LADDER_MAX_PIXELS
    assert [r.height for r in rungs] == sorted({r.height for r in rungs}, reverse=True)
    for rung in rungs:
        assert rung.width % 2 == 0
        assert rung.height % 2 == 0
        assert rung.height <= max(height, 16)
        assert abs(rung.width - rung.height * width / height) <= 2.5
