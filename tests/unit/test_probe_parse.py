"""ffprobe JSON parsing and image header reading, on output recorded from FFmpeg 5.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ffpool.ffmpeg.probe import parse_ffprobe_json, parse_rate, read_image_info
from ffpool.ffmpeg.probe_image import dimensions

# `ffprobe -v error -show_format -show_streams -of json out.mp4` (trimmed to the fields we use
# plus some we ignore; values exactly as ffprobe writes them: most numbers are strings).
RECORDED_MP4 = b"""{
    "streams": [
        {
            "index": 0, "codec_name": "h264", "profile": "High", "codec_type": "video",
            "width": 320, "height": 240, "pix_fmt": "yuv420p", "r_frame_rate": "25/1",
            "avg_frame_rate": "25/1", "time_base": "1/12800", "duration": "3.000000",
            "bit_rate": "219538", "nb_frames": "75", "disposition": {"default": 1},
            "tags": {"language": "und", "handler_name": "VideoHandler"}
        },
        {
            "index": 1, "codec_name": "aac", "codec_type": "audio", "sample_fmt": "fltp",
            "sample_rate": "44100", "channels": 1, "channel_layout": "mono",
            "r_frame_rate": "0/0", "avg_frame_rate": "0/0", "duration": "3.018005"
        }
    ],
    "format": {
        "filename": "/media/jobs/x/output.mp4", "nb_streams": 2,
        "format_name": "mov,mp4,m4a,3gp,3g2,mj2", "start_time": "0.000000",
        "duration": "3.019000", "size": "112661", "bit_rate": "298538", "probe_score": 100
    }
}"""

# A raw H.264 stream: no duration, bit rate or stream duration at all.
RECORDED_RAW_H264 = b"""{
    "streams": [{"index": 0, "codec_name": "h264", "codec_type": "video", "width": 320,
                 "height": 240, "r_frame_rate": "25/1", "avg_frame_rate": "25/1"}],
    "format": {"filename": "raw.h264", "nb_streams": 1, "format_name": "h264",
               "size": "264918", "probe_score": 51}
}"""


def test_recorded_mp4() -> None:
    info = parse_ffprobe_json(RECORDED_MP4)
    assert (info.format_name, info.duration, info.size, info.bit_rate) == (
        "mov,mp4,m4a,3gp,3g2,mj2",
        3.019,
        112661,
        298538,
    )
    video, audio = info.streams
    assert (video.codec_type, video.codec_name, video.width, video.height) == (
        "video",
        "h264",
        320,
        240,
    )
    assert (video.fps, video.duration, video.sample_rate) == (25.0, 3.0, None)
    assert (audio.codec_name, audio.sample_rate, audio.channels) == ("aac", 44100, 1)
    assert (audio.fps, audio.width, audio.duration) == (None, None, 3.018005)


def test_missing_duration_and_bitrate() -> None:
    info = parse_ffprobe_json(RECORDED_RAW_H264)
    assert (info.duration, info.bit_rate, info.size) == (None, None, 264918)
    assert info.streams[0].duration is None


def test_na_and_garbage_values_become_none() -> None:
    data = {
        "streams": [
            {
                "index": 3,
                "codec_type": "video",
                "width": "N/A",
                "height": -1,
                "r_frame_rate": "N/A",
                "avg_frame_rate": "30000/1001",
                "duration": "N/A",
                "sample_rate": "",
                "channels": "two",
            }
        ],
        "format": {"duration": "N/A", "size": "N/A", "bit_rate": "nan"},
    }
    info = parse_ffprobe_json(json.dumps(data).encode())
    (stream,) = info.streams
    assert stream.index == 3
    assert (stream.width, stream.height, stream.duration) == (None, None, None)
    assert (stream.sample_rate, stream.channels) == (None, None)
    assert stream.fps == 29.97  # r_frame_rate N/A: the average rate instead
    assert (info.duration, info.size, info.bit_rate) == (None, None, None)


@pytest.mark.parametrize("data", [b"{}", b'{"streams": []}', b'{"format": {}}'])
def test_empty_output(data: bytes) -> None:
    info = parse_ffprobe_json(data)
    assert info.streams == ()
    assert info.format_name is None


@pytest.mark.parametrize("data", [b"", b"not json", b"[]", b'{"streams": {}}', b"{\xff}"])
def test_invalid_output_is_a_value_error(data: bytes) -> None:
    with pytest.raises(ValueError, match="not ffprobe JSON"):
        parse_ffprobe_json(data)


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("25/1", 25.0),
        ("30000/1001", 29.97),
        ("24", 24.0),
        ("0/0", None),
        ("1/0", None),
        ("N/A", None),
        (None, None),
        ("", None),
        ("x/y", None),
    ],
)
def test_parse_rate(text: str | None, rate: float | None) -> None:
    assert parse_rate(text) == rate


# --- image headers --------------------------------------------------------------------------

# First bytes of FFmpeg 5.1 outputs: -c:v png (17x9), -c:v libwebp -lossless 1 (33x21).
PNG_17x9 = bytes.fromhex("89504e470d0a1a0a0000000d494844520000001100000009080200")
WEBP_LOSSLESS_33x21 = bytes.fromhex("52494646740500005745425056503" + "84c680500002f200005002239")
# -c:v libwebp (lossy, 320x240): "VP8 " chunk, frame tag, start code, 14-bit sizes.
WEBP_LOSSY_320x240 = bytes.fromhex(
    "524946460a13000057454250565038" + "20fe120000105a009d012a4001f000"
)


def jpeg(width: int, height: int, sof: int = 0xC0) -> bytes:
    app0 = b"\xff\xe0\x00\x10JFIF\x00\x01\x02\x00\x00\x01\x00\x01\x00\x00"
    comment = b"\xff\xfe\x00\x10Lavc59.37.100\x00"
    dht = b"\xff\xc4\x00\x04\x00\x00"  # C4 is not a frame header
    frame = bytes([0xFF, sof, 0, 17, 8]) + height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return b"\xff\xd8" + app0 + comment + b"\xff\xff" + dht + frame + b"\x03" + bytes(9)


def webp_extended(width: int, height: int) -> bytes:
    payload = bytes(4) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return b"RIFF\x00\x00\x00\x00WEBPVP8X" + len(payload).to_bytes(4, "little") + payload


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (PNG_17x9, ("png", 17, 9)),
        (WEBP_LOSSLESS_33x21, ("webp", 33, 21)),
        (WEBP_LOSSY_320x240, ("webp", 320, 240)),
        (webp_extended(4000, 3000), ("webp", 4000, 3000)),
        (jpeg(320, 240), ("mjpeg", 320, 240)),
        (jpeg(7680, 4320, sof=0xC2), ("mjpeg", 7680, 4320)),  # progressive
    ],
)
def test_image_dimensions(header: bytes, expected: tuple[str, int, int]) -> None:
    assert dimensions(header) == expected


@pytest.mark.parametrize(
    "header",
    [
        b"",
        b"GIF89a",
        PNG_17x9[:20],
        PNG_17x9[:12] + b"IDAT" + PNG_17x9[16:],
        jpeg(320, 240)[:30],
        jpeg(0, 240),
        b"\xff\xd8\x00\x00",
        b"RIFF\x00\x00\x00\x00WEBPVP8 ",
        WEBP_LOSSY_320x240[:-4],
    ],
)
def test_unrecognised_or_truncated_headers(header: bytes) -> None:
    assert dimensions(header) is None


def test_read_image_info(tmp_path: Path) -> None:
    path = tmp_path / "thumbnail.png"
    path.write_bytes(PNG_17x9 + bytes(100))
    info = read_image_info(path)
    assert info is not None
    assert (info.size, info.format_name) == (len(PNG_17x9) + 100, "image2")
    (stream,) = info.streams
    assert (stream.codec_name, stream.width, stream.height) == ("png", 17, 9)
    (tmp_path / "x.bin").write_bytes(b"nothing")
    assert read_image_info(tmp_path / "x.bin") is None
