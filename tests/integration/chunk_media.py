"""Media for the chunked-encoding tests, and how two encodes are compared (no tests here).

A chunked encode must be the single run's twin: the same frames at the same times (so audio,
encoded whole, is in sync at every chunk boundary), the same duration, and a picture within
a small SSIM margin (each chunk's encoder starts afresh, so bits differ)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

_SSIM_ALL = re.compile(r"All:([0-9.]+)")


def make_gop_clip(
    ffmpeg: str,
    dest: Path,
    *,
    seconds: float,
    size: str = "320x240",
    gop: int = 25,
    video_delay: float = 0.0,
) -> Path:
    """Test pattern and a tone, H.264 with B-frames and a keyframe every `gop` frames (25
    fps), so a cut at keyframes has somewhere to cut; with `video_delay`, the video starts
    that much later than the audio (as in many phone recordings and TS captures)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    delay = ["-itsoffset", str(video_delay)] if video_delay else []
    subprocess.run(
        [
            ffmpeg,
            *("-hide_banner", "-loglevel", "error", "-y"),
            *delay,
            *("-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration={seconds}"),
            *("-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}"),
            *("-c:v", "libx264", "-preset", "veryfast", "-g", str(gop), "-bf", "2"),
            *("-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(dest)),
        ],
        check=True,
        timeout=300,
    )
    return dest


def _probe(ffprobe: str, path: Path, *args: str) -> dict[str, object]:
    done = subprocess.run(
        [ffprobe, "-v", "error", *args, "-of", "json", str(path)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def video_pts(ffprobe: str, path: Path) -> list[float]:
    """Every video frame's presentation time, in order (packets: nothing is decoded)."""
    found = _probe(ffprobe, path, "-select_streams", "v:0", "-show_entries", "packet=pts_time")
    packets = found.get("packets", [])
    assert isinstance(packets, list)
    return sorted(round(float(p["pts_time"]), 4) for p in packets if "pts_time" in p)


def _stream_field(ffprobe: str, path: Path, kind: str, field: str) -> float:
    found = _probe(
        ffprobe, path, "-select_streams", f"{kind}:0", "-show_entries", f"stream={field}"
    )
    streams = found.get("streams", [])
    assert isinstance(streams, list)
    assert streams, f"no {kind} stream in {path}"
    return float(streams[0][field])


def stream_start(ffprobe: str, path: Path, kind: str) -> float:
    return _stream_field(ffprobe, path, kind, "start_time")


def stream_duration(ffprobe: str, path: Path, kind: str) -> float:
    return _stream_field(ffprobe, path, kind, "duration")


def ssim(ffmpeg: str, a: Path, b: Path) -> float:
    done = subprocess.run(
        [ffmpeg, "-hide_banner", "-i", str(a), "-i", str(b), "-lavfi", "ssim", "-f", "null", "-"],
        check=True,
        capture_output=True,
        timeout=300,
        text=True,
    )
    match = _SSIM_ALL.findall(done.stderr)
    assert match, done.stderr[-2000:]
    return float(match[-1])
