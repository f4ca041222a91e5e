"""argv building: properties over every valid operation (hypothesis): only known vocabulary,
numbers and our own paths, one whitelisted local input, the size-capped output last."""

from __future__ import annotations

import re

from hypothesis import given, reject, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from ffpool.domain.jobs import (
    MAX_MEDIA_SECONDS,
    MIN_TRIM_SECONDS,
    AudioCodec,
    AudioFormat,
    Container,
    ExtractAudioOp,
    ImageFormat,
    Operation,
    Preset,
    ProbeOp,
    ThumbnailOp,
    TranscodeOp,
    TrimMode,
    TrimOp,
    VideoCodec,
)
from ffpool.ffmpeg.argv import FORMAT_WHITELIST
from tests.unit.argv_cases import BIN, HEAD, JOB_DIR, SRC, plan

seconds = st.floats(min_value=0, max_value=7 * 24 * 3600, allow_nan=False)


@st.composite
def transcodes(draw: st.DrawFn) -> TranscodeOp:
    fields = {
        "container": draw(st.sampled_from(Container)),
        "video_codec": draw(st.sampled_from(VideoCodec)),
        "audio_codec": draw(st.sampled_from(AudioCodec)),
        "preset": draw(st.sampled_from(Preset)),
        "audio_bitrate_kbps": draw(st.integers(8, 512)),
        "height": draw(st.none() | st.integers(16, 4320)),
        "fps": draw(st.none() | st.floats(1, 120, allow_nan=False)),
    }
    rate = draw(st.sampled_from(["crf", "bitrate", "none"]))
    if rate == "crf":
        fields["crf"] = draw(st.integers(0, 63))
    elif rate == "bitrate":
        fields["video_bitrate_kbps"] = draw(st.integers(8, 100_000))
    try:
        return TranscodeOp(**fields)
    except ValidationError:
        reject()


operations = st.one_of(
    st.just(ProbeOp()),
    st.builds(
        ThumbnailOp,
        time=seconds,
        width=st.none() | st.integers(16, 7680),
        height=st.none() | st.integers(16, 4320),
        format=st.sampled_from(ImageFormat),
    ),
    transcodes(),
    st.builds(
        ExtractAudioOp, format=st.sampled_from(AudioFormat), bitrate_kbps=st.integers(8, 512)
    ),
    st.builds(
        TrimOp,
        start=seconds,
        duration=st.floats(MIN_TRIM_SECONDS, MAX_MEDIA_SECONDS, allow_nan=False),
        mode=st.sampled_from(TrimMode),
    ),
)

# Every argv element that is not a number, a path we chose, or a filter made of numbers.
VOCABULARY = {
    "-hide_banner",
    "-nostdin",
    "-y",
    "-nostats",
    "-progress",
    "pipe:1",
    "-stats_period",
    "-protocol_whitelist",
    "file",
    "-format_whitelist",
    FORMAT_WHITELIST,
    "-i",
    "-ss",
    "-t",
    "-v",
    "error",
    "-show_format",
    "-show_streams",
    "-of",
    "json",
    "-map",
    "0:v:0?",
    "0:a:0?",
    "0:v:0",
    "0:a:0",
    "-frames:v",
    "-update",
    "-vf",
    "-c",
    "-c:v",
    "-c:a",
    "copy",
    "-b:v",
    "-b:a",
    "-crf",
    "-preset",
    "-pix_fmt",
    "yuv420p",
    "-q:v",
    "-deadline",
    "realtime",
    "good",
    "-cpu-used",
    "-row-mt",
    "-x265-params",
    "log-level=error",
    "-tag:v",
    "hvc1",
    "-movflags",
    "+faststart",
    "-max_pixels",
    "-map_metadata",
    "-map_chapters",
    "-fs",
    "-f",
    "libx264",
    "libx265",
    "libvpx-vp9",
    "aac",
    "libopus",
    "libmp3lame",
    "flac",
    "pcm_s16le",
    "mjpeg",
    "png",
    "libwebp",
    "mp4",
    "mov",
    "matroska",
    "webm",
    "image2",
    "mp3",
    "adts",
    "opus",
    "wav",
    *(p.value for p in Preset),
}
NUMBER = re.compile(r"-?\d+(\.\d+)?k?")
FILTER = re.compile(
    r"scale=w=\d+:h=\d+:force_original_aspect_ratio=decrease(:force_divisible_by=2)?"
    r"(,fps=\d+(\.\d+)?)?|fps=\d+(\.\d+)?"
)


@settings(max_examples=300, deadline=None)
@given(op=operations)
def test_every_element_is_vocabulary_number_or_our_path(op: Operation) -> None:
    p = plan(op)
    ours = {BIN.ffmpeg, BIN.ffprobe, f"file:{SRC}", *(f"file:{o.temp_path}" for o in p.outputs)}
    for element in p.argv:
        assert (
            element in VOCABULARY
            or element in ours
            or NUMBER.fullmatch(element)
            or FILTER.fullmatch(element)
        ), element


@settings(max_examples=300, deadline=None)
@given(op=operations)
def test_input_is_whitelisted_local_file_and_output_is_last(op: Operation) -> None:
    argv = list(plan(op).argv)
    i = argv.index(f"file:{SRC}")
    before_input = argv[:i]
    assert argv.count("-i") == (0 if isinstance(op, ProbeOp) else 1)
    assert next(a for a in argv if a.startswith("file:")) == f"file:{SRC}"
    assert before_input[before_input.index("-protocol_whitelist") + 1] == "file"
    assert before_input[before_input.index("-format_whitelist") + 1] == FORMAT_WHITELIST
    if not isinstance(op, ProbeOp):
        assert argv[:9] == HEAD
        assert argv[i - 1] == "-i"
        out = plan(op).outputs[0]
        assert argv[-1] == f"file:{out.temp_path}"
        assert out.temp_path.parent == JOB_DIR
        assert out.temp_path.name.startswith(".")
        assert argv[-3] == "-f"
        assert argv[argv.index("-fs") + 1] == "1000000"
        assert argv.index("-fs") > i
