"""What one FFmpeg run may cost, the pure parts: the pixel check of a probed input, the rlimit
prefix, how a run that hit a limit is reported, the output size box, the metadata deny-list."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from pydantic import ValidationError
from yarl import URL

from ffpool.domain.events import FailureCode, MediaInfo, StreamInfo
from ffpool.domain.jobs import ThumbnailOp, TranscodeOp
from ffpool.ffmpeg import limits
from ffpool.ffmpeg.argv import build_plan, probe_argv
from ffpool.ffmpeg.binaries import Binaries
from ffpool.ffmpeg.codecs import MAX_HEIGHT, MAX_WIDTH, thumbnail_scale
from ffpool.ffmpeg.outcome import classify
from ffpool.ffmpeg.process import RunResult
from ffpool.ffmpeg.url_guard import check_address, masked
from ffpool.settings import Settings
from tests.unit.argv_cases import plan

BIN = Binaries(ffmpeg="/opt/ff/ffmpeg", ffprobe="/opt/ff/ffprobe")


def video(width: int, height: int, codec_type: str = "video") -> MediaInfo:
    stream = StreamInfo(index=0, codec_type=codec_type, width=width, height=height)
    return MediaInfo(streams=(stream,))


@pytest.mark.parametrize(
    ("info", "stderr", "refused"),
    [
        (video(7680, 4320), "", False),  # 8K passes the default limit
        (video(8000, 6000), "", False),  # a 48 MP photo too
        (video(16000, 16000), "", True),  # a decompression bomb
        (video(10000, 5001), "", True),  # one pixel row over
        (video(16000, 16000, "audio"), "", False),  # cover art dims on a non-video stream
        # A decoder that refused the frame leaves it 0x0, but says so.
        (video(0, 0), "[png] Picture size 16000x16000 exceeds specified max pixel count", True),
        (MediaInfo(), "", False),
    ],
)
def test_pixel_problem(info: MediaInfo, stderr: str, refused: bool) -> None:
    problem = limits.pixel_problem(info, stderr, 50_000_000)
    assert (problem is not None) == refused
    if problem:
        assert "50000000" in problem


def test_decoders_get_twice_the_limit_for_padding() -> None:
    # An 8160-wide PNG counts as 8192 in the decoder's check (measured, docs/security.md).
    assert limits.decoder_max_pixels(50_000_000) >= 8192 * 6120


def test_rlimit_prefix() -> None:
    s = Settings(_env_file=None, ffmpeg_max_memory_bytes=1 << 30, ffmpeg_max_cpu_seconds=60)
    assert limits.prefix("/usr/bin/prlimit", s) == (
        "/usr/bin/prlimit",
        f"--as={1 << 30}",
        f"--cpu=60:{60 + limits.CPU_KILL_GRACE_S}",
        "--",
    )
    memory_only = Settings(_env_file=None, ffmpeg_max_cpu_seconds=0)
    assert limits.rlimit_args(memory_only) == (f"--as={memory_only.ffmpeg_max_memory_bytes}",)
    off = Settings(_env_file=None, ffmpeg_max_memory_bytes=0, ffmpeg_max_cpu_seconds=0)
    assert limits.prefix("/usr/bin/prlimit", off) == ()
    assert limits.bound(BIN, off) == BIN


def test_prefix_comes_first_in_every_argv() -> None:
    bound = Binaries(ffmpeg=BIN.ffmpeg, ffprobe=BIN.ffprobe, prefix=("/p", "--as=1", "--"))
    p = build_plan(TranscodeOp(), Path("/m/a.mp4"), Path("/m/jobs/x"), bound, Settings())
    assert p.argv[:4] == ("/p", "--as=1", "--", BIN.ffmpeg)
    assert probe_argv(bound, Path("/m/a.mp4"))[:4] == ("/p", "--as=1", "--", BIN.ffprobe)


def result(exit_code: int, stderr: str) -> RunResult:
    return RunResult(exit_code=exit_code, stderr_tail=stderr, timed_out=False, elapsed_s=1.0)


@pytest.mark.parametrize(
    ("exit_code", "stderr", "code"),
    [
        (255, "frame=1\nExiting normally, received signal 24.", FailureCode.RESOURCE_LIMIT),
        (-24, "", FailureCode.RESOURCE_LIMIT),
        # Still stopping at the fourth SIGXCPU (a loaded machine): FFmpeg's hard exit.
        (
            123,
            "Immediate exit requested\nReceived > 3 system signals, hard exiting",
            FailureCode.RESOURCE_LIMIT,
        ),
        (1, "x264 [error]: malloc of size 3569077 failed", FailureCode.RESOURCE_LIMIT),
        (1, "Error while opening encoder: Cannot allocate memory", FailureCode.RESOURCE_LIMIT),
        (1, "Picture size 9000x9000 exceeds specified max pixel count", FailureCode.INPUT_REJECTED),
        (-9, "", FailureCode.FFMPEG_ERROR),
        (1, "Invalid data found when processing input", FailureCode.INVALID_MEDIA),
    ],
)
def test_classify_limits(exit_code: int, stderr: str, code: FailureCode) -> None:
    failure = classify(result(exit_code, stderr), 60.0, Path("/media"))
    assert failure is not None
    assert failure.code is code


@pytest.mark.parametrize(
    ("op", "scale"),
    [
        # One side given, the other followed a 200x16 input's aspect ratio.
        (ThumbnailOp(height=2000), "scale=w=7680:h=2000:force_original_aspect_ratio=decrease"),
        (ThumbnailOp(width=320), "scale=w=320:h=4320:force_original_aspect_ratio=decrease"),
        (
            TranscodeOp(height=1000),
            "scale=w=7680:h=1000:force_original_aspect_ratio=decrease:force_divisible_by=2",
        ),
        (
            TranscodeOp(height=4319),
            "scale=w=7680:h=4318:force_original_aspect_ratio=decrease:force_divisible_by=2",
        ),
    ],
)
def test_scale_stays_inside_the_documented_box(op: ThumbnailOp | TranscodeOp, scale: str) -> None:
    argv = list(plan(op).argv)
    assert argv[argv.index("-vf") + 1] == scale


def test_box_is_the_models_maxima() -> None:
    ThumbnailOp(width=MAX_WIDTH, height=MAX_HEIGHT)
    with pytest.raises(ValidationError):
        ThumbnailOp(width=MAX_WIDTH + 1)
    with pytest.raises(ValidationError):
        ThumbnailOp(height=MAX_HEIGHT + 1)
    with pytest.raises(ValidationError):
        TranscodeOp(height=MAX_HEIGHT + 1)
    assert thumbnail_scale(None, None) is None


ALWAYS_REFUSED = [
    "169.254.170.2",
    "169.254.170.23",
    "fd00:ec2::23",
    "100.100.100.200",
    "fd20:ce::254",
    "169.254.169.254",
    "fd00:ec2::254",
    "::ffff:100.100.100.200",
]


@pytest.mark.parametrize("address", ALWAYS_REFUSED)
def test_metadata_refused_even_with_private_allowed(address: str) -> None:
    ip = ipaddress.ip_address(address)
    for allow_private in (False, True):
        reason = check_address(ip, allow_private=allow_private)
        assert reason is not None
        assert "metadata" in reason


def test_azure_wireserver_refused_by_default() -> None:
    ip = ipaddress.ip_address("168.63.129.16")
    assert check_address(ip) == "cloud platform address"
    assert check_address(ip, allow_private=True) is None


@pytest.mark.parametrize(
    ("url", "logged"),
    [
        (
            "https://user:pw@cdn.example:8443/a/b.mp4?sig=s3cr3t#t",
            "https://cdn.example:8443/a/b.mp4?***",
        ),
        ("http://cdn.example/a.mp4", "http://cdn.example/a.mp4"),
    ],
)
def test_masked_url_keeps_no_credentials(url: str, logged: str) -> None:
    assert masked(URL(url)) == logged
